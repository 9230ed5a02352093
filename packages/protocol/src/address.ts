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
  const size = familyByte === AddressFamily.IPv4 ? 4 : familyByte === AddressFamily.IPv6 ? 16 : 0;
  if (size === 0) return fail('bad-attribute', `unknown address family 0x${(familyByte ?? 0).toString(16)}`);
  if (value.length !== 4 + size) return fail('bad-attribute', `${size === 4 ? 'IPv4' : 'IPv6'} address attribute must be ${4 + size} bytes`);
  const ip = Buffer.allocUnsafe(size);
  // XOR key: the magic cookie, then (IPv6) the transaction id — header bytes 4..20.
  for (let i = 0; i < size; i++) ip[i] = (value[4 + i] as number) ^ (header ? (header[4 + i] as number) : 0);
  return size === 4 ? ok({ family: 'IPv4', address: formatIPv4(ip), port }) : ok({ family: 'IPv6', address: formatIPv6(ip), port });
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
