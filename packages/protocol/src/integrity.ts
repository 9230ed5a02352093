// MESSAGE-INTEGRITY (HMAC-SHA1), MESSAGE-INTEGRITY-SHA256, FINGERPRINT and long-term keys
// (RFC 8489 §9.2, §14.5-14.7). The header length field is patched on the fly so that nothing
// is copied; comparisons are constant time.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { ATTRIBUTE_HEADER_LENGTH, FINGERPRINT_XOR, HEADER_LENGTH, PasswordAlgorithm } from './constants.js';
import { crc32Update } from './crc32.js';
import type { StunMessage } from './message.js';

/** Long-term key: MD5 or SHA-256 of "username:realm:password" (RFC 8489 §9.2.2). */
export function longTermKey(username: string, realm: string, password: string, algorithm: number = PasswordAlgorithm.MD5): Buffer {
  const hash = algorithm === PasswordAlgorithm.SHA256 ? 'sha256' : 'md5';
  return createHash(hash).update(`${username}:${realm}:${password}`, 'utf8').digest();
}

/** USERHASH value: SHA-256 of "username:realm" (RFC 8489 §14.4). */
export function userhash(username: string, realm: string): Buffer {
  return createHash('sha256').update(`${username}:${realm}`, 'utf8').digest();
}

// RFC 3454 table B.1 (mapped to nothing) and C.1.2 (non-ASCII spaces), the parts of SASLprep
// that change real passwords; the rest of the profile is NFKC. Code points, not a regex class:
// several of them are combining marks.
const MAP_TO_NOTHING: ReadonlySet<number> = new Set([
  0x00ad,
  0x034f,
  0x1806,
  0x180b,
  0x180c,
  0x180d,
  0x200b,
  0x200c,
  0x200d,
  0x2060,
  0xfeff,
  ...Array.from({ length: 16 }, (_, i) => 0xfe00 + i),
]);
const NON_ASCII_SPACE: ReadonlySet<number> = new Set([0x00a0, 0x1680, 0x202f, 0x205f, 0x3000, ...Array.from({ length: 11 }, (_, i) => 0x2000 + i)]);

/** SASLprep (RFC 4013) mapping and normalization, as RFC 5389 keys use; no-op for ASCII. */
export function saslprep(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    if (MAP_TO_NOTHING.has(cp)) continue;
    out += NON_ASCII_SPACE.has(cp) ? ' ' : ch;
  }
  return out.normalize('NFKC');
}

function lengthField(bodyLength: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(bodyLength, 0);
  return b;
}

/**
 * HMAC over the message up to the attribute at `offset`, with the header length set as if the
 * message ended right after an attribute of `attrValueLength` bytes there.
 */
export function computeHmac(raw: Buffer, offset: number, attrValueLength: number, key: Buffer, hash: 'sha1' | 'sha256'): Buffer {
  return createHmac(hash, key)
    .update(raw.subarray(0, 2))
    .update(lengthField(offset - HEADER_LENGTH + ATTRIBUTE_HEADER_LENGTH + attrValueLength))
    .update(raw.subarray(4, offset))
    .digest();
}

/** FINGERPRINT value for a fingerprint attribute placed at `offset`. */
export function computeFingerprint(raw: Buffer, offset: number): number {
  let crc = crc32Update(0, raw, 0, 2);
  crc = crc32Update(crc, lengthField(offset - HEADER_LENGTH + ATTRIBUTE_HEADER_LENGTH + 4));
  crc = crc32Update(crc, raw, 4, offset);
  return (crc ^ FINGERPRINT_XOR) >>> 0;
}

function valueAt(raw: Buffer, offset: number): Buffer {
  const len = raw.readUInt16BE(offset + 2);
  return raw.subarray(offset + ATTRIBUTE_HEADER_LENGTH, offset + ATTRIBUTE_HEADER_LENGTH + len);
}

/** True when MESSAGE-INTEGRITY is present and matches `key`. */
export function verifyMessageIntegrity(msg: StunMessage, key: Buffer): boolean {
  if (msg.integrityOffset < 0) return false;
  const got = valueAt(msg.raw, msg.integrityOffset);
  if (got.length !== 20) return false;
  return timingSafeEqual(got, computeHmac(msg.raw, msg.integrityOffset, 20, key, 'sha1'));
}

/** True when MESSAGE-INTEGRITY-SHA256 is present and matches `key` (truncated values allowed). */
export function verifyMessageIntegritySha256(msg: StunMessage, key: Buffer): boolean {
  if (msg.integritySha256Offset < 0) return false;
  const got = valueAt(msg.raw, msg.integritySha256Offset);
  if (got.length < 16 || got.length > 32 || got.length % 4 !== 0) return false;
  const want = computeHmac(msg.raw, msg.integritySha256Offset, got.length, key, 'sha256').subarray(0, got.length);
  return timingSafeEqual(got, want);
}

export type IntegrityCheck = 'ok' | 'mismatch' | 'missing';

/**
 * Checks the strongest integrity attribute present (SHA-256 first, as RFC 8489 §9.2.4 says a
 * receiver that knows it must).
 */
export function verifyIntegrity(msg: StunMessage, key: Buffer): IntegrityCheck {
  if (msg.integritySha256Offset >= 0) return verifyMessageIntegritySha256(msg, key) ? 'ok' : 'mismatch';
  if (msg.integrityOffset >= 0) return verifyMessageIntegrity(msg, key) ? 'ok' : 'mismatch';
  return 'missing';
}

/** FINGERPRINT check: 'missing' when absent. */
export function verifyFingerprint(msg: StunMessage): IntegrityCheck {
  if (msg.fingerprintOffset < 0) return 'missing';
  const got = valueAt(msg.raw, msg.fingerprintOffset);
  if (got.length !== 4) return 'mismatch';
  return got.readUInt32BE(0) === computeFingerprint(msg.raw, msg.fingerprintOffset) ? 'ok' : 'mismatch';
}
