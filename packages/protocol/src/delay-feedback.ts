// The shim<->server delay extension's wire value (issue 14, deliverable 3). One attribute, in the comprehension-optional range, so a peer
// that does not know it ignores it (RFC 8489 §14):
// - in an Allocate request the shim offers it (version only); a server that speaks it echoes it in
//   the success response (both as a trailer after MESSAGE-INTEGRITY: see below). A plain TURN client never sends it and never sees it.
// - after that, each end now and then (about every 50 ms while data flows) puts a Binding
//   indication into the stream (a Binding indication is a keepalive every TURN server accepts and
//   ignores) carrying: its own clock (for the other end's one-way delay), the bytes it has received
//   from the other end so far (acknowledgement), and the one-way delay it measured of the other
//   end's newest clock value (its clock minus theirs: any offset, only differences count).
// Value layout (20 bytes): version (1), reserved (3), sender clock ms (4, wraps), received bytes
// (8), one-way delay ms (4, signed; -2^31 = none yet: the sender has not seen a clock of the other
// end. Not 0, which is a value like any other: the two clocks have any offset).

import { AttributeType, HEADER_LENGTH, MAGIC_COOKIE, MessageClass, Method } from './constants.js';
import { computeFingerprint } from './integrity.js';
import { encodeMessageType } from './message-type.js';

export const DELAY_FEEDBACK_ATTRIBUTE = 0xc0d7;
export const DELAY_FEEDBACK_VERSION = 1;
export const DELAY_FEEDBACK_LENGTH = 20;
/** The one-way delay field's "none yet" (real values are clamped above it). */
const NO_ONE_WAY_DELAY = -0x80000000;

export interface DelayFeedback {
  readonly version: number;
  /** The sender's clock, ms, modulo 2^32. */
  readonly clockMs: number;
  /** Bytes received from the other end so far (below 2^53). */
  readonly receivedBytes: number;
  /**
   * The other end's newest clock value as seen here: receiver clock minus sender clock, ms;
   * undefined before the sender has seen one.
   */
  readonly oneWayDelayMs: number | undefined;
}

export function encodeDelayFeedback(f: DelayFeedback): Buffer {
  const b = Buffer.alloc(DELAY_FEEDBACK_LENGTH);
  b[0] = f.version;
  b.writeUInt32BE(f.clockMs >>> 0, 4);
  b.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(f.receivedBytes))), 8);
  const owd = f.oneWayDelayMs;
  b.writeInt32BE(owd === undefined ? NO_ONE_WAY_DELAY : Math.max(NO_ONE_WAY_DELAY + 1, Math.min(0x7fffffff, Math.round(owd))), 16);
  return b;
}

/** The value of the attribute, or undefined when it is not one this version reads. */
export function decodeDelayFeedback(value: Buffer): DelayFeedback | undefined {
  if (value.length !== DELAY_FEEDBACK_LENGTH || value[0] !== DELAY_FEEDBACK_VERSION) return undefined;
  const received = value.readBigUInt64BE(8);
  if (received > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const owd = value.readInt32BE(16);
  return {
    version: DELAY_FEEDBACK_VERSION,
    clockMs: value.readUInt32BE(4),
    receivedBytes: Number(received),
    oneWayDelayMs: owd === NO_ONE_WAY_DELAY ? undefined : owd,
  };
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
export const DELAY_FEEDBACK_OFFER: DelayFeedback = Object.freeze({ version: DELAY_FEEDBACK_VERSION, clockMs: 0, receivedBytes: 0, oneWayDelayMs: undefined });

/** True when an attribute value offers (or echoes) a version this code speaks. */
export function isDelayFeedbackOffer(value: Buffer | undefined): boolean {
  return value !== undefined && value.length === DELAY_FEEDBACK_LENGTH && value[0] === DELAY_FEEDBACK_VERSION;
}

// The offer and the echo travel as a trailer: after MESSAGE-INTEGRITY(-SHA256), before a
// FINGERPRINT (recomputed). A shim in pass-through mode forwards the app's own signed Allocate,
// and an attribute inside the signed part would break its integrity; after it, integrity still
// verifies (RFC 8489 §14.5 hashes up to MESSAGE-INTEGRITY), and the shim strips the echo from
// the response before the app sees it, just as well. Agents ignore attributes after
// MESSAGE-INTEGRITY (§14.5), so a server that does not speak the extension (coturn) ignores it as
// it would any unknown comprehension-optional attribute; ours reads this one there on purpose.
// Unsigned, so a tampering hop could add or strip it: it can only turn the extension off or make
// a stream stall, which such a hop can do anyway.
const TRAILER_LENGTH = 4 + DELAY_FEEDBACK_LENGTH;
const OFFER_VALUE = encodeDelayFeedback(DELAY_FEEDBACK_OFFER);

/** Where the attribute of `type` starts in a whole STUN message (wherever it is), or -1. */
function findAttribute(raw: Buffer, type: number): number {
  let pos = HEADER_LENGTH;
  const end = Math.min(raw.length, HEADER_LENGTH + raw.readUInt16BE(2));
  while (pos + 4 <= end) {
    if (raw.readUInt16BE(pos) === type) return pos;
    pos += 4 + ((raw.readUInt16BE(pos + 2) + 3) & ~3);
  }
  return -1;
}

/** The delay extension's offer or echo in a whole STUN message (anywhere: see above). */
export function hasDelayFeedbackOffer(raw: Buffer): boolean {
  if (raw.length < HEADER_LENGTH) return false;
  const at = findAttribute(raw, DELAY_FEEDBACK_ATTRIBUTE);
  return at >= 0 && at + TRAILER_LENGTH <= raw.length && isDelayFeedbackOffer(raw.subarray(at + 4, at + TRAILER_LENGTH));
}

/** `raw` (a whole STUN message) with the offer/echo as its trailer: a new buffer. */
export function withDelayFeedbackOffer(raw: Buffer): Buffer {
  const fp = findAttribute(raw, AttributeType.Fingerprint);
  const at = fp >= 0 ? fp : raw.length;
  const out = Buffer.allocUnsafe(raw.length + TRAILER_LENGTH);
  raw.copy(out, 0, 0, at);
  out.writeUInt16BE(DELAY_FEEDBACK_ATTRIBUTE, at);
  out.writeUInt16BE(DELAY_FEEDBACK_LENGTH, at + 2);
  OFFER_VALUE.copy(out, at + 4);
  raw.copy(out, at + TRAILER_LENGTH, at);
  out.writeUInt16BE(out.length - HEADER_LENGTH, 2);
  if (fp >= 0) out.writeUInt32BE(computeFingerprint(out, fp + TRAILER_LENGTH), fp + TRAILER_LENGTH + 4);
  return out;
}

/** `raw` without the extension's attribute (the same buffer when it has none). */
export function withoutDelayFeedback(raw: Buffer): Buffer {
  const at = findAttribute(raw, DELAY_FEEDBACK_ATTRIBUTE);
  if (at < 0 || raw.readUInt16BE(at + 2) !== DELAY_FEEDBACK_LENGTH) return raw;
  const out = Buffer.allocUnsafe(raw.length - TRAILER_LENGTH);
  raw.copy(out, 0, 0, at);
  raw.copy(out, at, at + TRAILER_LENGTH);
  out.writeUInt16BE(out.length - HEADER_LENGTH, 2);
  const fp = findAttribute(out, AttributeType.Fingerprint);
  if (fp >= 0) out.writeUInt32BE(computeFingerprint(out, fp), fp + 4);
  return out;
}

/**
 * The report in a Binding indication as encodeDelayFeedbackIndication writes it (the attribute
 * first), or undefined: an indication with other attributes (a keepalive) is no report.
 */
export function readDelayFeedbackIndication(frame: Buffer): DelayFeedback | undefined {
  if (frame.length < DELAY_FEEDBACK_INDICATION_LENGTH || !isBindingIndication(frame)) return undefined;
  if (frame.readUInt16BE(HEADER_LENGTH) !== DELAY_FEEDBACK_ATTRIBUTE || frame.readUInt16BE(HEADER_LENGTH + 2) !== DELAY_FEEDBACK_LENGTH) return undefined;
  return decodeDelayFeedback(frame.subarray(HEADER_LENGTH + 4, DELAY_FEEDBACK_INDICATION_LENGTH));
}

/** Message types the shim looks at for the echo (RFC 8656: Allocate 0x003, Refresh 0x004). */
export const ALLOCATE_SUCCESS = encodeMessageType(Method.Allocate, MessageClass.SuccessResponse);
export const REFRESH_SUCCESS = encodeMessageType(Method.Refresh, MessageClass.SuccessResponse);
export const ALLOCATE_REQUEST = encodeMessageType(Method.Allocate, MessageClass.Request);
