// App UDP datagram -> TURN-over-TCP form (RFC 8656 §12.5). A datagram is one STUN message or
// one ChannelData message; over UDP, ChannelData padding is optional, on TCP it is required.
import { CHANNEL_DATA_HEADER_LENGTH, HEADER_LENGTH, MAGIC_COOKIE, MessageClass, PADDING, WireKind, classOf, wireKindOf } from '@onionturn/protocol';

/** Returned by messageEnd for a datagram that is neither STUN nor ChannelData. */
export const NOT_TURN = -1;

/**
 * Length of the TURN message in `datagram` without padding, or NOT_TURN. The TCP form is these
 * bytes followed by channelDataPadding(end) zero bytes (0 for STUN, whose length is a multiple of 4).
 * A number, not an object, because this runs once per relayed datagram.
 */
export function messageEnd(datagram: Buffer): number {
  const n = datagram.length;
  if (n < CHANNEL_DATA_HEADER_LENGTH) return NOT_TURN;
  const kind = wireKindOf(datagram[0] as number);
  const len = datagram.readUInt16BE(2);
  if (kind === WireKind.Stun) {
    if (n !== HEADER_LENGTH + len || (len & 3) !== 0 || n < HEADER_LENGTH) return NOT_TURN;
    return datagram.readUInt32BE(4) === MAGIC_COOKIE ? n : NOT_TURN;
  }
  if (kind === WireKind.ChannelData) {
    // Any 0x4000-0x7FFF channel: RFC 5766 servers (coturn) bind above 0x4FFF; the server judges.
    const end = CHANNEL_DATA_HEADER_LENGTH + len;
    return n >= end && n <= end + 3 ? end : NOT_TURN;
  }
  return NOT_TURN;
}

/** True for a STUN request: only those may open a new upstream flow. */
export function isStunRequest(datagram: Buffer): boolean {
  return wireKindOf(datagram[0] as number) === WireKind.Stun && classOf(datagram.readUInt16BE(0)) === MessageClass.Request;
}

/** Views of protocol's PADDING for 0-3 bytes, made once: the relay path pads without allocating. */
const PAD_VIEWS: readonly Buffer[] = [0, 1, 2, 3].map((n) => PADDING.subarray(0, n));

/** `n` (0-3, from channelDataPadding) zero bytes of TCP padding. */
export function paddingBytes(n: number): Buffer {
  return PAD_VIEWS[n] as Buffer;
}

/** What the first bytes of an app TCP connection say, before anything is dialed. */
export type FirstFrameVerdict = { readonly kind: 'wait' } | { readonly kind: 'request' } | { readonly kind: 'refuse'; readonly reason: string };

const WAIT: FirstFrameVerdict = { kind: 'wait' };
const REQUEST: FirstFrameVerdict = { kind: 'request' };

/**
 * Judges the start of an app's TCP byte stream (at least its first 8 bytes decide): only a STUN
 * request may open a Tor stream. ChannelData first (which is how "GET ", "POST" and every other
 * HTTP method parse), STUN responses or indications, and bytes that are no TURN at all are refused,
 * so a web page that fetches http://127.0.0.1:3478 costs no circuit.
 */
export function firstFrameVerdict(head: Buffer): FirstFrameVerdict {
  if (head.length === 0) return WAIT;
  const first = head[0] as number;
  const kind = wireKindOf(first);
  if (kind === WireKind.Other) return { kind: 'refuse', reason: `first byte 0x${first.toString(16)} is neither STUN nor ChannelData` };
  if (kind === WireKind.ChannelData) return { kind: 'refuse', reason: `ChannelData (first byte 0x${first.toString(16)}) before any STUN request` };
  if (head.length < 2) return WAIT;
  if (!isStunRequest(head)) return { kind: 'refuse', reason: 'a STUN response or indication before any STUN request' };
  if (head.length < 8) return WAIT;
  return head.readUInt32BE(4) === MAGIC_COOKIE ? REQUEST : { kind: 'refuse', reason: 'STUN message without the magic cookie on a TURN stream' };
}
