// SOCKS5 (RFC 1928) and username/password auth (RFC 1929) messages, plus Tor's extended reply
// codes (torspec socks-extensions, proposal 304). Pure: bytes in, values out. Hostnames always
// go to the proxy as ATYP DOMAINNAME so that Tor, not this machine, resolves them.
import { isIPv4, isIPv6 } from 'node:net';
import { parseIPv4, parseIPv6 } from '@onionturn/protocol';

export const SOCKS_VERSION = 0x05;
export const AUTH_VERSION = 0x01;

export const AuthMethod = { None: 0x00, UserPass: 0x02, NoAcceptable: 0xff } as const;
export const Command = { Connect: 0x01 } as const;
export const AddressType = { IPv4: 0x01, Domain: 0x03, IPv6: 0x04 } as const;

export const Reply = {
  Succeeded: 0x00,
  GeneralFailure: 0x01,
  NotAllowed: 0x02,
  NetworkUnreachable: 0x03,
  HostUnreachable: 0x04,
  ConnectionRefused: 0x05,
  TtlExpired: 0x06,
  CommandNotSupported: 0x07,
  AddressTypeNotSupported: 0x08,
  // Tor extended codes for onion services (proposal 304).
  OnionDescriptorNotFound: 0xf0,
  OnionDescriptorInvalid: 0xf1,
  OnionIntroFailed: 0xf2,
  OnionRendezvousFailed: 0xf3,
  OnionMissingClientAuth: 0xf4,
  OnionWrongClientAuth: 0xf5,
  OnionInvalidAddress: 0xf6,
  OnionIntroTimedOut: 0xf7,
} as const;

const REPLY_TEXT: Readonly<Record<number, string>> = {
  0x01: 'general SOCKS server failure (Tor: the stream failed, e.g. the exit could not resolve or reach the host)',
  0x02: 'connection not allowed by ruleset (Tor: the exit policy refuses this address/port)',
  0x03: 'network unreachable',
  0x04: 'host unreachable (Tor: no route, or an onion service descriptor is not published yet)',
  0x05: 'connection refused by the destination',
  0x06: 'TTL expired (Tor: the stream or circuit timed out)',
  0x07: 'command not supported',
  0x08: 'address type not supported',
  0xf0: 'onion service descriptor can not be found (is the onion address right and the service up?)',
  0xf1: 'onion service descriptor is invalid',
  0xf2: 'onion service introduction failed',
  0xf3: 'onion service rendezvous failed',
  0xf4: 'onion service needs client authorization (missing)',
  0xf5: 'onion service client authorization is wrong',
  0xf6: 'invalid onion address',
  0xf7: 'onion service introduction timed out',
};

/** A human sentence for a SOCKS5 reply code, Tor's extended codes included. */
export function replyText(code: number): string {
  return REPLY_TEXT[code] ?? `unknown SOCKS reply 0x${code.toString(16).padStart(2, '0')}`;
}

export interface SocksAuth {
  readonly username: string;
  readonly password: string;
}

/**
 * Method selection. With credentials (isolation) both methods are offered: Tor picks
 * username/password when offered, and a proxy without auth can still pick none.
 */
export function encodeGreeting(auth: SocksAuth | undefined): Buffer {
  return auth ? Buffer.from([SOCKS_VERSION, 2, AuthMethod.UserPass, AuthMethod.None]) : Buffer.from([SOCKS_VERSION, 1, AuthMethod.None]);
}

export function encodeUserPass(auth: SocksAuth): Buffer {
  const u = Buffer.from(auth.username, 'utf8');
  const p = Buffer.from(auth.password, 'utf8');
  if (u.length < 1 || u.length > 255 || p.length < 1 || p.length > 255) throw new RangeError('SOCKS username and password must be 1-255 bytes');
  return Buffer.concat([Buffer.from([AUTH_VERSION, u.length]), u, Buffer.from([p.length]), p]);
}

/** CONNECT request; IP literals go as addresses, everything else as a name for the proxy to resolve. */
export function encodeConnect(host: string, port: number): Buffer {
  let addr: Buffer;
  if (isIPv4(host) || isIPv6(host)) {
    // node:net also calls "fe80::1%eth0" IPv6; a zone index has no place in SOCKS5 (nor meaning through Tor).
    const ip = isIPv4(host) ? parseIPv4(host) : parseIPv6(host);
    if (!ip) throw new RangeError(`SOCKS cannot carry the address '${host}'`);
    addr = Buffer.concat([Buffer.from([ip.length === 4 ? AddressType.IPv4 : AddressType.IPv6]), ip]);
  } else {
    const name = Buffer.from(host, 'utf8');
    if (name.length < 1 || name.length > 255) throw new RangeError('SOCKS hostname must be 1-255 bytes');
    addr = Buffer.concat([Buffer.from([AddressType.Domain, name.length]), name]);
  }
  const out = Buffer.alloc(3 + addr.length + 2);
  out[0] = SOCKS_VERSION;
  out[1] = Command.Connect;
  addr.copy(out, 3);
  out.writeUInt16BE(port, 3 + addr.length);
  return out;
}

/**
 * Length of the CONNECT reply at the start of `buf`: 0 when more bytes are needed, -1 when the
 * address type is not one RFC 1928 defines.
 */
export function connectReplyLength(buf: Buffer): number {
  if (buf.length < 5) return 0;
  const atyp = buf[3];
  const len = atyp === AddressType.IPv4 ? 10 : atyp === AddressType.IPv6 ? 22 : atyp === AddressType.Domain ? 7 + (buf[4] as number) : -1;
  if (len < 0) return -1;
  return buf.length >= len ? len : 0;
}
