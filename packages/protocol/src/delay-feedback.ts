// The shim<->server delay extension's wire value (issue 14, deliverable 3). One attribute, in the comprehension-optional range, so a peer
// that does not know it ignores it (RFC 8489 §14):
// - in an Allocate request the shim offers it (version only); a server that speaks it echoes it in
//   the success response. A plain TURN client never sends it and never sees it.
// - after that, each end now and then (about every 50 ms while data flows) puts a Binding
//   indication into the stream (a Binding indication is a keepalive every TURN server accepts and
//   ignores) carrying: its own clock (for the other end's one-way delay), the bytes it has received
//   from the other end so far (acknowledgement), and the one-way delay it measured of the other
//   end's newest clock value (its clock minus theirs: any offset, only differences count).
// Value layout (20 bytes): version (1), reserved (3), sender clock ms (4, wraps), received bytes
// (8), one-way delay ms (4, signed).

import { HEADER_LENGTH, MAGIC_COOKIE, MessageClass, Method } from './constants.js';
import { encodeMessageType } from './message-type.js';

export const DELAY_FEEDBACK_ATTRIBUTE = 0xc0d7;
export const DELAY_FEEDBACK_VERSION = 1;
export const DELAY_FEEDBACK_LENGTH = 20;

export interface DelayFeedback {
  readonly version: number;
  /** The sender's clock, ms, modulo 2^32. */
  readonly clockMs: number;
  /** Bytes received from the other end so far (below 2^53). */
  readonly receivedBytes: number;
  /** The other end's newest clock value as seen here: receiver clock minus sender clock, ms. */
  readonly oneWayDelayMs: number;
}

export function encodeDelayFeedback(f: DelayFeedback): Buffer {
  const b = Buffer.alloc(DELAY_FEEDBACK_LENGTH);
  b[0] = f.version;
  b.writeUInt32BE(f.clockMs >>> 0, 4);
  b.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(f.receivedBytes))), 8);
  b.writeInt32BE(Math.max(-0x80000000, Math.min(0x7fffffff, Math.round(f.oneWayDelayMs))), 16);
  return b;
}

/** The value of the attribute, or undefined when it is not one this version reads. */
export function decodeDelayFeedback(value: Buffer): DelayFeedback | undefined {
  if (value.length !== DELAY_FEEDBACK_LENGTH || value[0] !== DELAY_FEEDBACK_VERSION) return undefined;
  const received = value.readBigUInt64BE(8);
  if (received > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return { version: DELAY_FEEDBACK_VERSION, clockMs: value.readUInt32BE(4), receivedBytes: Number(received), oneWayDelayMs: value.readInt32BE(16) };
}

/** `later - earlier` for clock values modulo 2^32 (a difference within ±2^31 ms, ~24 days). */
export function clockDiffMs(later: number, earlier: number): number {
  return (later - earlier) | 0;
}

/** The report as it goes on the wire: a Binding indication (RFC 8489 §5) with only this attribute. */
export const DELAY_FEEDBACK_INDICATION_LENGTH = HEADER_LENGTH + 4 + DELAY_FEEDBACK_LENGTH;
const BINDING_INDICATION = encodeMessageType(Method.Binding, MessageClass.Indication);
/** Distinct transaction ids for reports (nothing answers an indication; they only tell reports apart in a capture). */
let reportSeq = 0;

/** A report as a whole Binding indication (44 bytes, a fresh buffer: it may wait in a socket's queue). */
export function encodeDelayFeedbackIndication(f: Omit<DelayFeedback, 'version'>): Buffer {
  const b = Buffer.allocUnsafe(DELAY_FEEDBACK_INDICATION_LENGTH);
  b.writeUInt16BE(BINDING_INDICATION, 0);
  b.writeUInt16BE(4 + DELAY_FEEDBACK_LENGTH, 2);
  b.writeUInt32BE(MAGIC_COOKIE, 4);
  b.writeUInt32BE(0x6f6e696f, 8); // "onio"
  b.writeUInt32BE(0, 12);
  b.writeUInt32BE((reportSeq = (reportSeq + 1) >>> 0), 16);
  b.writeUInt16BE(DELAY_FEEDBACK_ATTRIBUTE, HEADER_LENGTH);
  b.writeUInt16BE(DELAY_FEEDBACK_LENGTH, HEADER_LENGTH + 2);
  encodeDelayFeedback({ ...f, version: DELAY_FEEDBACK_VERSION }).copy(b, HEADER_LENGTH + 4);
  return b;
}

/** True when `frame` (a whole STUN frame) is a Binding indication: the cheap test before decoding. */
export function isBindingIndication(frame: Buffer): boolean {
  return frame.length >= HEADER_LENGTH && frame.readUInt16BE(0) === BINDING_INDICATION;
}

/** The offer an Allocate (or take-over Refresh) carries, and the echo a server answers with: version only. */
export const DELAY_FEEDBACK_OFFER: DelayFeedback = Object.freeze({ version: DELAY_FEEDBACK_VERSION, clockMs: 0, receivedBytes: 0, oneWayDelayMs: 0 });

/** True when an attribute value offers (or echoes) a version this code speaks. */
export function isDelayFeedbackOffer(value: Buffer | undefined): boolean {
  return value !== undefined && value.length === DELAY_FEEDBACK_LENGTH && value[0] === DELAY_FEEDBACK_VERSION;
}
