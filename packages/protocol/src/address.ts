// MAPPED-ADDRESS style and XOR-*-ADDRESS attribute values (RFC 8489 §14.1, §14.2).
import { AddressFamily, MAGIC_COOKIE } from './constants.js';
import { formatIPv4, formatIPv6, parseIp } from './ip-address.js';
import { fail, ok, type Result } from './result.js';

export type IpFamily = 'IPv4' | 'IPv6';

export interface TransportAddress {
  readonly family: IpFamily;
  readonly address: string;
  readonly port: number;
}

const COOKIE_HI = MAGIC_COOKIE >>> 16;

/** Reads a (possibly XOR-ed) address value. `header` is the 20-byte STUN header for the XOR key. */
export function readAddress(value: Buffer, header: Buffer | undefined): Result<TransportAddress> {
  if (value.length < 4) return fail('bad-attribute', 'address attribute shorter than 4 bytes');
  const familyByte = value[1];
  let port = value.readUInt16BE(2);
  if (header) port ^= COOKIE_HI;
  if (familyByte === AddressFamily.IPv4) {
    if (value.length !== 8) return fail('bad-attribute', 'IPv4 address attribute must be 8 bytes');
    if (!header) return ok({ family: 'IPv4', address: formatIPv4(value, 4), port });
    const b = Buffer.allocUnsafe(4);
    for (let i = 0; i < 4; i++) b[i] = (value[4 + i] as number) ^ (header[4 + i] as number);
    return ok({ family: 'IPv4', address: formatIPv4(b), port });
  }
  if (familyByte === AddressFamily.IPv6) {
    if (value.length !== 20) return fail('bad-attribute', 'IPv6 address attribute must be 20 bytes');
    if (!header) return ok({ family: 'IPv6', address: formatIPv6(value, 4), port });
    const b = Buffer.allocUnsafe(16);
    for (let i = 0; i < 16; i++) b[i] = (value[4 + i] as number) ^ (header[4 + i] as number);
    return ok({ family: 'IPv6', address: formatIPv6(b), port });
  }
  return fail('bad-attribute', `unknown address family 0x${(familyByte ?? 0).toString(16)}`);
}

/** Bytes of an address value; XOR-ed with the header's cookie and transaction id when given. */
export function writeAddress(addr: TransportAddress, header: Buffer | undefined): Buffer {
  const ip = parseIp(addr.address);
  if (!ip || (ip.length === 4) !== (addr.family === 'IPv4')) {
    throw new TypeError(`not an ${addr.family} address: ${addr.address}`);
  }
  if (!Number.isInteger(addr.port) || addr.port < 0 || addr.port > 0xffff) throw new RangeError(`bad port ${addr.port}`);
  const out = Buffer.alloc(4 + ip.length);
  out[1] = ip.length === 4 ? AddressFamily.IPv4 : AddressFamily.IPv6;
  out.writeUInt16BE(header ? addr.port ^ COOKIE_HI : addr.port, 2);
  for (let i = 0; i < ip.length; i++) out[4 + i] = (ip[i] as number) ^ (header ? (header[4 + i] as number) : 0);
  return out;
}
