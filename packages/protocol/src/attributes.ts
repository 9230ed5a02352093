// Typed values for every attribute of RFC 8489 and RFC 8656 (plus the ICE ones a STUN server
// meets). Reading never throws; writing throws only on values the caller should not produce.
import { readAddress, writeAddress, type IpFamily, type TransportAddress } from './address.js';
import { AddressFamily, AttributeType, ERROR_REASONS, MAX_TEXT_BYTES, MAX_USERNAME_BYTES } from './constants.js';
import { fail, ok, type Result } from './result.js';

export interface PasswordAlgorithmValue {
  readonly algorithm: number;
  readonly parameters: Buffer;
}

export type AttributeValue =
  | { readonly kind: 'address'; readonly address: TransportAddress }
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'bytes'; readonly bytes: Buffer }
  | { readonly kind: 'uint32'; readonly value: number }
  | { readonly kind: 'channel-number'; readonly channel: number }
  | { readonly kind: 'requested-transport'; readonly protocol: number }
  | { readonly kind: 'family'; readonly family: IpFamily }
  | { readonly kind: 'even-port'; readonly reserve: boolean }
  | { readonly kind: 'empty' }
  | { readonly kind: 'error-code'; readonly code: number; readonly reason: string }
  | { readonly kind: 'unknown-attributes'; readonly types: readonly number[] }
  | { readonly kind: 'password-algorithms'; readonly algorithms: readonly PasswordAlgorithmValue[] }
  | { readonly kind: 'password-algorithm'; readonly algorithm: PasswordAlgorithmValue }
  | { readonly kind: 'address-error-code'; readonly family: IpFamily; readonly code: number; readonly reason: string }
  | { readonly kind: 'icmp'; readonly icmpType: number; readonly icmpCode: number; readonly errorData: number };

export type AttributeKind = AttributeValue['kind'];

const A = AttributeType;
/** How each known attribute's value is shaped. Unknown types are 'bytes'. */
export const ATTRIBUTE_KINDS: Readonly<Record<number, AttributeKind>> = {
  [A.MappedAddress]: 'address',
  [A.XorMappedAddress]: 'address',
  [A.XorPeerAddress]: 'address',
  [A.XorRelayedAddress]: 'address',
  [A.AlternateServer]: 'address',
  [A.Username]: 'text',
  [A.Realm]: 'text',
  [A.Nonce]: 'text',
  [A.Software]: 'text',
  [A.AlternateDomain]: 'text',
  [A.Userhash]: 'bytes',
  [A.MessageIntegrity]: 'bytes',
  [A.MessageIntegritySha256]: 'bytes',
  [A.Data]: 'bytes',
  [A.ReservationToken]: 'bytes',
  [A.MobilityTicket]: 'bytes',
  [A.IceControlled]: 'bytes',
  [A.IceControlling]: 'bytes',
  [A.Fingerprint]: 'uint32',
  [A.Lifetime]: 'uint32',
  [A.Priority]: 'uint32',
  [A.ChannelNumber]: 'channel-number',
  [A.RequestedTransport]: 'requested-transport',
  [A.RequestedAddressFamily]: 'family',
  [A.AdditionalAddressFamily]: 'family',
  [A.EvenPort]: 'even-port',
  [A.DontFragment]: 'empty',
  [A.UseCandidate]: 'empty',
  [A.ErrorCode]: 'error-code',
  [A.UnknownAttributes]: 'unknown-attributes',
  [A.PasswordAlgorithms]: 'password-algorithms',
  [A.PasswordAlgorithm]: 'password-algorithm',
  [A.AddressErrorCode]: 'address-error-code',
  [A.Icmp]: 'icmp',
};

const XOR_ADDRESS_TYPES: ReadonlySet<number> = new Set([A.XorMappedAddress, A.XorPeerAddress, A.XorRelayedAddress]);

/** Exact value sizes, where the RFC fixes one. */
const FIXED_SIZES: Readonly<Record<number, number>> = {
  [A.Userhash]: 32,
  [A.MessageIntegrity]: 20,
  [A.ReservationToken]: 8,
  [A.IceControlled]: 8,
  [A.IceControlling]: 8,
};

function textLimit(type: number): number {
  return type === A.Username ? MAX_USERNAME_BYTES : MAX_TEXT_BYTES;
}

// Strict: text attributes are UTF-8 (RFC 8489 §14), and a lenient decode would turn different
// bytes into the same string (0xff and 0xfe both into U+FFFD) and grow it past the byte limits.
// ignoreBOM keeps a leading U+FEFF, so what decodes re-encodes to the same bytes.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The bytes from `start` as UTF-8 text, or undefined when they are not UTF-8. */
function utf8(value: Buffer, start = 0): string | undefined {
  try {
    return UTF8.decode(value.subarray(start));
  } catch {
    return undefined;
  }
}

function familyFromByte(b: number | undefined): IpFamily | undefined {
  return b === AddressFamily.IPv4 ? 'IPv4' : b === AddressFamily.IPv6 ? 'IPv6' : undefined;
}

function familyByte(f: IpFamily): number {
  return f === 'IPv4' ? AddressFamily.IPv4 : AddressFamily.IPv6;
}

function readErrorNumber(value: Buffer, at: number): number {
  // Class in the low 3 bits of one byte, number (0-99) in the next (RFC 8489 §14.8).
  return ((value[at] as number) & 0x07) * 100 + (value[at + 1] as number);
}

/**
 * Decodes an attribute value. `header` is the message's 20-byte header (the XOR key).
 */
export function decodeAttributeValue(type: number, value: Buffer, header: Buffer): Result<AttributeValue> {
  const kind = ATTRIBUTE_KINDS[type] ?? 'bytes';
  const fixed = FIXED_SIZES[type];
  const name = `attribute 0x${type.toString(16).padStart(4, '0')}`;
  switch (kind) {
    case 'address': {
      const r = readAddress(value, XOR_ADDRESS_TYPES.has(type) ? header : undefined);
      return r.ok ? ok({ kind, address: r.value }) : r;
    }
    case 'text': {
      if (value.length > textLimit(type)) return fail('bad-attribute', `${name} is ${value.length} bytes, over the limit of ${textLimit(type)}`);
      const text = utf8(value);
      return text === undefined ? fail('bad-attribute', `${name} is not UTF-8`) : ok({ kind, text });
    }
    case 'bytes': {
      if (fixed !== undefined && value.length !== fixed) return fail('bad-attribute', `${name} must be ${fixed} bytes, got ${value.length}`);
      if (type === A.MessageIntegritySha256 && (value.length < 16 || value.length > 32 || value.length % 4 !== 0)) {
        return fail('bad-attribute', `MESSAGE-INTEGRITY-SHA256 must be 16-32 bytes in steps of 4, got ${value.length}`);
      }
      return ok({ kind, bytes: value });
    }
    case 'uint32':
      if (value.length !== 4) return fail('bad-attribute', `${name} must be 4 bytes, got ${value.length}`);
      return ok({ kind, value: value.readUInt32BE(0) });
    case 'channel-number':
      if (value.length !== 4) return fail('bad-attribute', `CHANNEL-NUMBER must be 4 bytes, got ${value.length}`);
      return ok({ kind, channel: value.readUInt16BE(0) });
    case 'requested-transport':
      if (value.length !== 4) return fail('bad-attribute', `REQUESTED-TRANSPORT must be 4 bytes, got ${value.length}`);
      return ok({ kind, protocol: value[0] as number });
    case 'family': {
      const family = familyFromByte(value[0]);
      if (value.length !== 4 || !family) return fail('bad-attribute', `${name}: bad address family`);
      return ok({ kind, family });
    }
    case 'even-port':
      if (value.length !== 1) return fail('bad-attribute', `EVEN-PORT must be 1 byte, got ${value.length}`);
      return ok({ kind, reserve: ((value[0] as number) & 0x80) !== 0 });
    case 'empty':
      if (value.length !== 0) return fail('bad-attribute', `${name} must be empty`);
      return ok({ kind });
    case 'error-code': {
      if (value.length < 4 || value.length > 4 + MAX_TEXT_BYTES) return fail('bad-attribute', 'ERROR-CODE has a bad length');
      const code = readErrorNumber(value, 2);
      if (code < 300 || code > 699 || (value[3] as number) > 99) return fail('bad-attribute', `ERROR-CODE ${code} is out of range`);
      const reason = utf8(value, 4);
      return reason === undefined ? fail('bad-attribute', 'ERROR-CODE reason is not UTF-8') : ok({ kind, code, reason });
    }
    case 'unknown-attributes': {
      if (value.length % 2 !== 0) return fail('bad-attribute', 'UNKNOWN-ATTRIBUTES has an odd length');
      const types: number[] = [];
      for (let i = 0; i < value.length; i += 2) types.push(value.readUInt16BE(i));
      return ok({ kind, types });
    }
    case 'password-algorithms': {
      const algorithms: PasswordAlgorithmValue[] = [];
      let pos = 0;
      while (pos < value.length) {
        const r = readPasswordAlgorithm(value, pos);
        if (!r.ok) return r;
        algorithms.push(r.value.algorithm);
        pos = r.value.next;
      }
      return ok({ kind, algorithms });
    }
    case 'password-algorithm': {
      const r = readPasswordAlgorithm(value, 0);
      if (!r.ok) return r;
      if (r.value.next !== value.length) return fail('bad-attribute', 'PASSWORD-ALGORITHM has trailing bytes');
      return ok({ kind, algorithm: r.value.algorithm });
    }
    case 'address-error-code': {
      const family = familyFromByte(value[0]);
      if (value.length < 4 || value.length > 4 + MAX_TEXT_BYTES || !family) return fail('bad-attribute', 'ADDRESS-ERROR-CODE has a bad length or family');
      // The same codes as ERROR-CODE (RFC 8656 §18.13): anything else would not re-encode.
      const code = readErrorNumber(value, 2);
      if (code < 300 || code > 699 || (value[3] as number) > 99) return fail('bad-attribute', `ADDRESS-ERROR-CODE ${code} is out of range`);
      const reason = utf8(value, 4);
      return reason === undefined ? fail('bad-attribute', 'ADDRESS-ERROR-CODE reason is not UTF-8') : ok({ kind, family, code, reason });
    }
    case 'icmp':
      if (value.length !== 8) return fail('bad-attribute', `ICMP must be 8 bytes, got ${value.length}`);
      return ok({ kind, icmpType: value[2] as number, icmpCode: value[3] as number, errorData: value.readUInt32BE(4) });
  }
}

function readPasswordAlgorithm(value: Buffer, pos: number): Result<{ algorithm: PasswordAlgorithmValue; next: number }> {
  if (pos + 4 > value.length) return fail('bad-attribute', 'password algorithm entry is truncated');
  const algorithm = value.readUInt16BE(pos);
  const paramLen = value.readUInt16BE(pos + 2);
  const end = pos + 4 + paramLen;
  const next = pos + 4 + ((paramLen + 3) & ~3);
  if (next > value.length) return fail('bad-attribute', 'password algorithm parameters are truncated');
  return ok({ algorithm: { algorithm, parameters: value.subarray(pos + 4, end) }, next });
}

function writeErrorNumber(out: Buffer, at: number, code: number): void {
  if (!Number.isInteger(code) || code < 300 || code > 699) throw new RangeError(`error code ${code} is out of range`);
  out[at] = Math.floor(code / 100);
  out[at + 1] = code % 100;
}

/** Encodes an attribute value (without the attribute header and padding). */
export function encodeAttributeValue(type: number, value: AttributeValue, header: Buffer): Buffer {
  switch (value.kind) {
    case 'address':
      return writeAddress(value.address, XOR_ADDRESS_TYPES.has(type) ? header : undefined);
    case 'text': {
      const b = Buffer.from(value.text, 'utf8');
      if (b.length > textLimit(type)) throw new RangeError(`attribute 0x${type.toString(16)} text is over ${textLimit(type)} bytes`);
      return b;
    }
    case 'bytes':
      return value.bytes;
    case 'uint32': {
      const b = Buffer.allocUnsafe(4);
      b.writeUInt32BE(value.value >>> 0, 0);
      return b;
    }
    case 'channel-number': {
      const b = Buffer.alloc(4);
      b.writeUInt16BE(value.channel, 0);
      return b;
    }
    case 'requested-transport': {
      const b = Buffer.alloc(4);
      b[0] = value.protocol;
      return b;
    }
    case 'family': {
      const b = Buffer.alloc(4);
      b[0] = familyByte(value.family);
      return b;
    }
    case 'even-port':
      return Buffer.from([value.reserve ? 0x80 : 0]);
    case 'empty':
      return Buffer.alloc(0);
    case 'error-code': {
      const reason = Buffer.from(value.reason, 'utf8');
      const b = Buffer.alloc(4 + reason.length);
      writeErrorNumber(b, 2, value.code);
      reason.copy(b, 4);
      return b;
    }
    case 'unknown-attributes': {
      const b = Buffer.alloc(value.types.length * 2);
      value.types.forEach((t, i) => b.writeUInt16BE(t, i * 2));
      return b;
    }
    case 'password-algorithms':
      return Buffer.concat(value.algorithms.map(writePasswordAlgorithm));
    case 'password-algorithm':
      return writePasswordAlgorithm(value.algorithm);
    case 'address-error-code': {
      const reason = Buffer.from(value.reason, 'utf8');
      const b = Buffer.alloc(4 + reason.length);
      b[0] = familyByte(value.family);
      writeErrorNumber(b, 2, value.code);
      reason.copy(b, 4);
      return b;
    }
    case 'icmp': {
      const b = Buffer.alloc(8);
      b[2] = value.icmpType;
      b[3] = value.icmpCode;
      b.writeUInt32BE(value.errorData >>> 0, 4);
      return b;
    }
  }
}

function writePasswordAlgorithm(a: PasswordAlgorithmValue): Buffer {
  const b = Buffer.alloc(4 + ((a.parameters.length + 3) & ~3));
  b.writeUInt16BE(a.algorithm, 0);
  b.writeUInt16BE(a.parameters.length, 2);
  a.parameters.copy(b, 4);
  return b;
}

/** ERROR-CODE value with the RFC's reason phrase when none is given. */
export function errorCodeValue(code: number, reason?: string): AttributeValue {
  return { kind: 'error-code', code, reason: reason ?? ERROR_REASONS[code] ?? 'Error' };
}
