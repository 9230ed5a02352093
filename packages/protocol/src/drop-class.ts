// What a TURN frame on a relay stream may lose when it has waited too long (issue 14): the frame's
// own kind (wireKindOf), then, for relayed data (ChannelData, Send and Data indications), the
// relayed payload's first byte as RFC 7983 demultiplexes it. Runs once per queued frame when a
// writer bounds delay in time: a few byte reads, nothing allocated (the result goes into a
// caller's reusable object).
import { AttributeType, HEADER_LENGTH, MAGIC_COOKIE, MessageClass, Method } from './constants.js';
import { WireKind, wireKindOf } from './first-byte.js';
import { encodeMessageType } from './message-type.js';

/**
 * Control: a STUN/TURN message of our own (a response, a Refresh...): never dropped.
 * Vital: relayed ICE checks, DTLS handshake/alert records, RTCP (its feedback drives WebRTC's own
 * congestion control), small DTLS application data (the data channel's SACKs and short
 * messages): never dropped. Small: audio-sized media or other data (dropped only when
 * stale). Large: video-sized media or other data (dropped first).
 */
export const DropClass = { Control: 0, Vital: 1, Small: 2, Large: 3 } as const;
export type DropClass = (typeof DropClass)[keyof typeof DropClass];

/**
 * A relayed payload above this many bytes counts as Large. Opus packets are 60-300 bytes (with
 * SRTP); video packets are filled up to the MTU (~1,100-1,200 bytes) except a frame's last one.
 */
export const LARGE_PAYLOAD_BYTES = 400;

/** What classifyFrame found; `rtp` says ssrc and timestamp are set (an RTP packet: one video frame shares both). */
export interface FrameClass {
  /** A DropClass (a plain number: writers in @onionturn/io take it without knowing the protocol). */
  cls: number;
  rtp: boolean;
  /**
   * DTLS application data: in WebRTC the data channel's SCTP, which retransmits what is lost (a
   * second or more later, its handshake too). Its large records are dropped when they wait in a
   * writer past the bound (that bounds what a bulk transfer queues ahead of media; small ones are
   * Vital), never on arrival, where it has crossed Tor already and dropping it only delays it.
   * Optional: a writer's classifier output (@onionturn/io's MessageClass) has no use for it; the
   * classifiers here always set it.
   */
  reliable?: boolean;
  /**
   * RTP's marker bit: a video frame's last packet (often its only one, and small, at a low
   * bitrate), or an audio talkspurt's first. Optional as `reliable` is; set when `rtp`.
   */
  marker?: boolean;
  ssrc: number;
  timestamp: number;
}

export function newFrameClass(): FrameClass {
  return { cls: DropClass.Control, rtp: false, reliable: false, marker: false, ssrc: 0, timestamp: 0 };
}

const SEND_INDICATION = encodeMessageType(Method.Send, MessageClass.Indication);
const DATA_INDICATION = encodeMessageType(Method.Data, MessageClass.Indication);
/** DTLS record content types (RFC 6347 §4.1): change_cipher_spec, alert, handshake. application_data is 23. */
const DTLS_APPLICATION_DATA = 23;
/** DTLS 1.0/1.2 records carry version 0xFEFF/0xFEFD: the first version byte is 0xFE. */
const DTLS_VERSION_MAJOR = 0xfe;
const RTP_HEADER_LENGTH = 12;
/** DTLS 1.3 unified header (RFC 9147 §4): the first byte's top three bits are 001, its low two the epoch's. */
const DTLS13_UNIFIED_MASK = 0xe0;
const DTLS13_UNIFIED_BITS = 0x20;
const DTLS13_EPOCH_BITS = 0x03;
/** Epoch 2: the handshake traffic keys (epoch 3 and up: application data). */
const DTLS13_HANDSHAKE_EPOCH = 2;

/**
 * Classifies the TURN frame at `buf[at, at + n)` (a STUN message, or ChannelData with its
 * padding) into `out`.
 */
export function classifyFrame(buf: Buffer, at: number, n: number, out: FrameClass): void {
  out.rtp = false;
  out.reliable = false;
  out.cls = DropClass.Control;
  if (n < 4) return;
  const kind = wireKindOf(buf[at] as number);
  if (kind === WireKind.ChannelData) {
    const len = buf.readUInt16BE(at + 2);
    classifyPayload(buf, at + 4, Math.min(len, n - 4), out);
    return;
  }
  if (kind !== WireKind.Stun || n < HEADER_LENGTH) return;
  const type = buf.readUInt16BE(at);
  if (type !== SEND_INDICATION && type !== DATA_INDICATION) return;
  // The DATA attribute: walk the attributes (XOR-PEER-ADDRESS comes first, so one or two steps).
  const end = Math.min(at + n, at + HEADER_LENGTH + buf.readUInt16BE(at + 2));
  let p = at + HEADER_LENGTH;
  while (p + 4 <= end) {
    const t = buf.readUInt16BE(p);
    const len = buf.readUInt16BE(p + 2);
    if (t === AttributeType.Data) {
      classifyPayload(buf, p + 4, Math.min(len, end - p - 4), out);
      return;
    }
    p += 4 + ((len + 3) & ~3);
  }
  // An indication without DATA carries nothing to lose.
}

/**
 * May relayed data of class `c` be dropped when it arrives late (the delay extension's arrival
 * check, on the server and in the shim)? Small media and data only: audio played that late is
 * concealed anyway. Not video: it has crossed the narrow path already, and a lost packet breaks
 * its frame until the receiver's NACK brings it again over that path (up to ten times in Chromium
 * while those drop too): on tor-congested, video dropped on arrival left 40-74 kbit/s of
 * retransmissions on 50 of video, and keeping it raised the frames decoded (7.2 to 8.3 a second)
 * and lowered the round trip under media (p95 1.5 to 1.3 s). So not a small RTP packet with the
 * marker bit either (a video frame's last packet, or the whole of a small frame; an audio
 * talkspurt's first packet is kept too, rarely). Never what is never dropped (classes 0 and 1),
 * nor the data channel's SCTP, which would only send it again.
 */
export function droppableOnArrival(c: FrameClass): boolean {
  return c.cls === DropClass.Small && c.reliable !== true && !(c.rtp && c.marker === true);
}

/** Classifies a relayed payload (RFC 7983 §7 first byte) of `len` bytes at `buf[at]`. */
export function classifyPayload(buf: Buffer, at: number, len: number, out: FrameClass): void {
  out.rtp = false;
  out.reliable = false;
  const b0 = len > 0 ? (buf[at] as number) : 0;
  const large = len > LARGE_PAYLOAD_BYTES;
  out.cls = large ? DropClass.Large : DropClass.Small;
  if (len < 2) return;
  const b1 = buf[at + 1] as number;
  if (b0 <= 3) {
    // STUN (an ICE check or consent) has the magic cookie at 4; other bytes are just data.
    if (len >= HEADER_LENGTH && buf.readUInt32BE(at + 4) === MAGIC_COOKIE) out.cls = DropClass.Vital;
    return;
  }
  if (b0 >= 20 && b0 <= 63) {
    // DTLS: handshake, alert and change_cipher_spec are vital; application data (the data
    // channel's SCTP, which retransmits) is vital when small, else large data. DTLS 1.3 sends the
    // handshake after ServerHello encrypted, in unified-header records (RFC 9147 §4: first byte 001CSLEE, EE the
    // epoch's low bits) of epoch 2; application data goes in epoch 3 and up.
    if (b0 < DTLS_APPLICATION_DATA && b1 === DTLS_VERSION_MAJOR) out.cls = DropClass.Vital;
    else if ((b0 & DTLS13_UNIFIED_MASK) === DTLS13_UNIFIED_BITS && (b0 & DTLS13_EPOCH_BITS) === DTLS13_HANDSHAKE_EPOCH) out.cls = DropClass.Vital;
    else {
      out.reliable = (b0 === DTLS_APPLICATION_DATA && b1 === DTLS_VERSION_MAJOR) || (b0 & DTLS13_UNIFIED_MASK) === DTLS13_UNIFIED_BITS;
      // A small SCTP packet (a SACK, a short message) is vital too: dropping it costs SCTP a
      // retransmission timeout (backed off on each loss: a data channel dropped at the bound
      // answered none of its pings for 10 s in a congested call) and saves a cell. A large one
      // (a bulk transfer's) is dropped when stale, so a transfer cannot queue ahead of media.
      if (out.reliable && !large) out.cls = DropClass.Vital;
    }
    return;
  }
  if (b0 >= 128 && b0 <= 191) {
    // RTCP (RFC 5761: payload type 192-223 in the second byte), else RTP.
    if (b1 >= 192 && b1 <= 223) {
      out.cls = DropClass.Vital;
      return;
    }
    if (len >= RTP_HEADER_LENGTH) {
      out.rtp = true;
      out.marker = (b1 & 0x80) !== 0;
      out.timestamp = buf.readUInt32BE(at + 4);
      out.ssrc = buf.readUInt32BE(at + 8);
    }
  }
}
