// Decoding a whole STUN message: header checks, the attribute walk, and the ordering rules of
// RFC 8489 §14.5-14.7 (nothing but MESSAGE-INTEGRITY-SHA256 and FINGERPRINT after
// MESSAGE-INTEGRITY; nothing after FINGERPRINT). Values stay as subarrays of the input: no copies.
import {
  ATTRIBUTE_HEADER_LENGTH,
  AttributeType,
  HEADER_LENGTH,
  MAGIC_COOKIE,
  type MessageClass,
  isComprehensionRequired,
  isKnownAttribute,
} from './constants.js';
import { WireKind, wireKindOf } from './first-byte.js';
import { classOf, methodOf } from './message-type.js';
import { fail, ok, type Result } from './result.js';

/**
 * Most attributes one message may carry. A real request has a dozen or so (a CreatePermission
 * with many peers a few dozen); 64 KiB of zero-length attributes would be 16,383, and every one
 * costs work before authentication, so decoding stays linear and small.
 */
export const MAX_ATTRIBUTES = 128;

export interface RawAttribute {
  readonly type: number;
  /** Offset of the attribute's 4-byte header inside the message. */
  readonly offset: number;
  /** The value without padding (a view into the message). */
  readonly value: Buffer;
}

export interface StunMessage {
  /** The whole message, header included (a view into the input). */
  readonly raw: Buffer;
  readonly type: number;
  readonly method: number;
  readonly messageClass: MessageClass;
  /** RFC 3489 message: no magic cookie; the transaction id is then 16 bytes (raw[4..20]). */
  readonly classic: boolean;
  /** The 12-byte transaction id (a view). */
  readonly transactionId: Buffer;
  /** Attributes in wire order, those that must be ignored (after integrity) left out. */
  readonly attributes: readonly RawAttribute[];
  /** Comprehension-required types this codec does not know, for a 420 answer. */
  readonly unknownRequired: readonly number[];
  /** Offsets of the integrity and fingerprint attributes in raw, or -1. */
  readonly integrityOffset: number;
  readonly integritySha256Offset: number;
  readonly fingerprintOffset: number;
  /** How many attributes were dropped because they followed MESSAGE-INTEGRITY(-SHA256). */
  readonly ignoredAfterIntegrity: number;
}

/**
 * Decodes one STUN message that fills `buf` exactly (a UDP datagram or a frame from the
 * stream framer). Never throws; hostile input gives a DecodeError.
 */
export function decodeMessage(buf: Buffer): Result<StunMessage> {
  if (buf.length < HEADER_LENGTH) return fail('truncated', `message of ${buf.length} bytes is shorter than the 20-byte header`);
  if (wireKindOf(buf[0] as number) !== WireKind.Stun) return fail('not-stun', 'first two bits are not zero');
  const length = buf.readUInt16BE(2);
  if (length % 4 !== 0) return fail('bad-length', `message length ${length} is not a multiple of 4`);
  if (length + HEADER_LENGTH !== buf.length) {
    return fail(length + HEADER_LENGTH > buf.length ? 'truncated' : 'bad-length', `header says ${length + HEADER_LENGTH} bytes, got ${buf.length}`);
  }
  const type = buf.readUInt16BE(0);
  const classic = buf.readUInt32BE(4) !== MAGIC_COOKIE;
  const attributes: RawAttribute[] = [];
  const unknownRequired: number[] = [];
  let unknownSeen: Set<number> | undefined;
  let count = 0;
  let integrityOffset = -1;
  let integritySha256Offset = -1;
  let fingerprintOffset = -1;
  let ignored = 0;
  let pos = HEADER_LENGTH;
  while (pos < buf.length) {
    if (pos + ATTRIBUTE_HEADER_LENGTH > buf.length) return fail('truncated', `attribute header at ${pos} runs past the end`);
    if (++count > MAX_ATTRIBUTES) return fail('too-many-attributes', `more than ${MAX_ATTRIBUTES} attributes`);
    const attrType = buf.readUInt16BE(pos);
    const attrLen = buf.readUInt16BE(pos + 2);
    const end = pos + ATTRIBUTE_HEADER_LENGTH + attrLen;
    if (end > buf.length) return fail('truncated', `attribute 0x${attrType.toString(16)} at ${pos} runs past the end`);
    const padded = pos + ATTRIBUTE_HEADER_LENGTH + ((attrLen + 3) & ~3);
    if (padded > buf.length) return fail('truncated', `padding of attribute 0x${attrType.toString(16)} runs past the end`);
    if (fingerprintOffset >= 0) {
      // FINGERPRINT must be last (RFC 8489 §14.7); anything after it is ignored like post-integrity data.
      ignored++;
    } else if (integritySha256Offset >= 0 && attrType !== AttributeType.Fingerprint) {
      ignored++;
    } else if (integrityOffset >= 0 && attrType !== AttributeType.MessageIntegritySha256 && attrType !== AttributeType.Fingerprint) {
      ignored++;
    } else {
      attributes.push({ type: attrType, offset: pos, value: buf.subarray(pos + ATTRIBUTE_HEADER_LENGTH, end) });
      if (attrType === AttributeType.MessageIntegrity) integrityOffset = pos;
      else if (attrType === AttributeType.MessageIntegritySha256) integritySha256Offset = pos;
      else if (attrType === AttributeType.Fingerprint) fingerprintOffset = pos;
      else if (isComprehensionRequired(attrType) && !isKnownAttribute(attrType)) {
        unknownSeen ??= new Set();
        if (!unknownSeen.has(attrType)) {
          unknownSeen.add(attrType);
          unknownRequired.push(attrType);
        }
      }
    }
    pos = padded;
  }
  return ok({
    raw: buf,
    type,
    method: methodOf(type),
    messageClass: classOf(type),
    classic,
    transactionId: buf.subarray(8, HEADER_LENGTH),
    attributes,
    unknownRequired,
    integrityOffset,
    integritySha256Offset,
    fingerprintOffset,
    ignoredAfterIntegrity: ignored,
  });
}

/** The first attribute of this type (RFC 8489 §14: only the first occurrence counts). */
export function getAttribute(msg: StunMessage, type: number): RawAttribute | undefined {
  const attrs = msg.attributes;
  for (let i = 0; i < attrs.length; i++) {
    const a = attrs[i] as RawAttribute;
    if (a.type === type) return a;
  }
  return undefined;
}

/** The 20-byte header of the message: the key for XOR addresses. */
export function headerOf(msg: StunMessage): Buffer {
  return msg.raw.subarray(0, HEADER_LENGTH);
}
