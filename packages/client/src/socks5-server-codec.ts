// The server side of SOCKS5 (RFC 1928) for the shim's --socks-listen front end: the greeting,
// RFC 1929 username/password, the request, the reply, and the RFC 1928 §7 UDP request header;
// also Tor's RESOLVE extension (command 0xF0, torspec socks-extensions) that the shim sends to
// tor. Pure: bytes in, values out; hostile input gives a value saying why, never a throw.
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '@onionturn/protocol';
import { AUTH_VERSION, AddressType, AuthMethod, SOCKS_VERSION, type SocksAuth } from './socks5-codec.js';

/** Request commands: RFC 1928 plus Tor's RESOLVE. */
export const SocksCommand = { Connect: 0x01, Bind: 0x02, UdpAssociate: 0x03, TorResolve: 0xf0 } as const;

/** RFC 1929 status byte: 0 is success (the front end accepts any username/password: they only pick the circuit). */
export const AUTH_SUCCESS = 0x00;

/** A destination as SOCKS names it: an IP literal or a name (never resolved here). */
export type SocksAddress = { readonly kind: 'ip'; readonly host: string; readonly family: 4 | 6 } | { readonly kind: 'name'; readonly host: string };

export interface SocksDestination {
  readonly address: SocksAddress;
  readonly port: number;
}

/** `need`: more bytes; `bad`: the connection is to be refused/closed with `reason`. */
export type Parsed<T> =
  { readonly kind: 'need' } | { readonly kind: 'bad'; readonly reason: string } | { readonly kind: 'ok'; readonly value: T; readonly length: number };

const NEED = Object.freeze({ kind: 'need' }) as { readonly kind: 'need' };
const bad = (reason: string): { readonly kind: 'bad'; readonly reason: string } => ({ kind: 'bad', reason });

/** Greeting (method selection): the methods the client offers. */
export function parseGreeting(buf: Buffer): Parsed<readonly number[]> {
  if (buf.length < 2) return NEED;
  if (buf[0] !== SOCKS_VERSION) return bad(`not SOCKS5 (version byte 0x${(buf[0] as number).toString(16)})`);
  const n = buf[1] as number;
  if (n === 0) return bad('the greeting offers no authentication method');
  if (buf.length < 2 + n) return NEED;
  return { kind: 'ok', value: [...buf.subarray(2, 2 + n)], length: 2 + n };
}

/** The method the front end picks: username/password when offered (isolation), else none. */
export function chooseMethod(offered: readonly number[]): number {
  if (offered.includes(AuthMethod.UserPass)) return AuthMethod.UserPass;
  if (offered.includes(AuthMethod.None)) return AuthMethod.None;
  return AuthMethod.NoAcceptable;
}

export function encodeMethodChoice(method: number): Buffer {
  return Buffer.from([SOCKS_VERSION, method]);
}

/** RFC 1929 request: VER=1, ULEN, UNAME, PLEN, PASSWD. */
export function parseUserPass(buf: Buffer): Parsed<SocksAuth> {
  if (buf.length < 2) return NEED;
  if (buf[0] !== AUTH_VERSION) return bad(`username/password subnegotiation version 0x${(buf[0] as number).toString(16)} is not 1`);
  const ulen = buf[1] as number;
  if (buf.length < 3 + ulen) return NEED;
  const plen = buf[2 + ulen] as number;
  const length = 3 + ulen + plen;
  if (buf.length < length) return NEED;
  return { kind: 'ok', value: { username: buf.toString('utf8', 2, 2 + ulen), password: buf.toString('utf8', 3 + ulen, length) }, length };
}

export function encodeAuthStatus(status: number): Buffer {
  return Buffer.from([AUTH_VERSION, status]);
}

/** ATYP + address + port at `at`; the length it takes, 0 when incomplete, -1 for a bad ATYP. */
function addressLength(buf: Buffer, at: number): number {
  if (buf.length <= at) return 0;
  const atyp = buf[at];
  if (atyp === AddressType.IPv4) return 1 + 4 + 2;
  if (atyp === AddressType.IPv6) return 1 + 16 + 2;
  if (atyp === AddressType.Domain) return buf.length > at + 1 ? 1 + 1 + (buf[at + 1] as number) + 2 : 0;
  return -1;
}

/** Reads the ATYP/address/port at `at`, whose length addressLength() gave as complete. */
function readDestination(buf: Buffer, at: number): SocksDestination | string {
  const atyp = buf[at];
  if (atyp === AddressType.IPv4) return { address: { kind: 'ip', host: formatIPv4(buf.subarray(at + 1, at + 5)), family: 4 }, port: buf.readUInt16BE(at + 5) };
  if (atyp === AddressType.IPv6)
    return { address: { kind: 'ip', host: formatIPv6(buf.subarray(at + 1, at + 17)), family: 6 }, port: buf.readUInt16BE(at + 17) };
  const n = buf[at + 1] as number;
  if (n === 0) return 'an empty host name';
  const host = buf.toString('utf8', at + 2, at + 2 + n);
  // A name is handed to Tor as text: NULs and controls have no place in one.
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f]/.test(host)) return 'a host name with control characters or spaces';
  return { address: { kind: 'name', host }, port: buf.readUInt16BE(at + 2 + n) };
}

export interface SocksRequest {
  readonly command: number;
  readonly destination: SocksDestination;
}

/** The request: VER CMD RSV ATYP DST.ADDR DST.PORT. A bad ATYP is 'bad' (answer 0x08). */
export function parseRequest(buf: Buffer): Parsed<SocksRequest> | { readonly kind: 'bad-address-type' } {
  if (buf.length < 4) return NEED;
  if (buf[0] !== SOCKS_VERSION) return bad(`request version 0x${(buf[0] as number).toString(16)} is not 5`);
  const len = addressLength(buf, 3);
  if (len < 0) return { kind: 'bad-address-type' };
  if (len === 0 || buf.length < 3 + len) return NEED;
  const dest = readDestination(buf, 3);
  if (typeof dest === 'string') return bad(`the request names ${dest}`);
  return { kind: 'ok', value: { command: buf[1] as number, destination: dest }, length: 3 + len };
}

function encodeAddressPort(host: string, port: number): Buffer {
  const v4 = parseIPv4(host);
  if (v4) return Buffer.concat([Buffer.from([AddressType.IPv4]), v4, u16(port)]);
  const v6 = parseIPv6(host);
  if (v6) return Buffer.concat([Buffer.from([AddressType.IPv6]), v6, u16(port)]);
  const name = Buffer.from(host, 'utf8');
  if (name.length < 1 || name.length > 255) throw new RangeError('SOCKS host name must be 1-255 bytes');
  return Buffer.concat([Buffer.from([AddressType.Domain, name.length]), name, u16(port)]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** A reply: VER REP RSV ATYP BND.ADDR BND.PORT (an unspecified IPv4 0.0.0.0:0 when none is bound). */
export function encodeReply(code: number, bound: { readonly host: string; readonly port: number } = { host: '0.0.0.0', port: 0 }): Buffer {
  return Buffer.concat([Buffer.from([SOCKS_VERSION, code, 0]), encodeAddressPort(bound.host, bound.port)]);
}

/** RFC 1928 §7: RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA. */
export interface UdpDatagram {
  readonly destination: SocksDestination;
  /** A view into the input. */
  readonly data: Buffer;
}

export type UdpParse = { readonly kind: 'ok'; readonly value: UdpDatagram } | { readonly kind: 'bad'; readonly reason: UdpDropReason };

/** Why a datagram on the relay socket was dropped: the unit the shim counts. */
export type UdpDropReason = 'short' | 'bad-address-type' | 'bad-name' | 'fragmented';

export function parseUdpDatagram(buf: Buffer): UdpParse {
  if (buf.length < 4) return { kind: 'bad', reason: 'short' };
  const len = addressLength(buf, 3);
  if (len < 0) return { kind: 'bad', reason: 'bad-address-type' };
  if (len === 0 || buf.length < 3 + len) return { kind: 'bad', reason: 'short' };
  // Checked after the header parses: a fragment is dropped, counted as such (we never reassemble).
  if (buf[2] !== 0) return { kind: 'bad', reason: 'fragmented' };
  const dest = readDestination(buf, 3);
  if (typeof dest === 'string') return { kind: 'bad', reason: 'bad-name' };
  return { kind: 'ok', value: { destination: dest, data: buf.subarray(3 + len) } };
}

/** The header put before a datagram for the app: where it came from. */
export function encodeUdpHeader(host: string, port: number): Buffer {
  return Buffer.concat([Buffer.from([0, 0, 0]), encodeAddressPort(host, port)]);
}

/** Tor's RESOLVE request for `name` (DOMAINNAME, port 0). */
export function encodeResolve(name: string): Buffer {
  return Buffer.concat([Buffer.from([SOCKS_VERSION, SocksCommand.TorResolve, 0]), encodeAddressPort(name, 0)]);
}

/** Tor's RESOLVE reply: code and, on success, the IP address in BND.ADDR. */
export function parseResolveReply(buf: Buffer): Parsed<{ readonly code: number; readonly address: SocksAddress | undefined }> {
  if (buf.length < 4) return NEED;
  if (buf[0] !== SOCKS_VERSION) return bad('RESOLVE reply is not SOCKS5');
  const len = addressLength(buf, 3);
  if (len < 0) return bad('RESOLVE reply has an unknown address type');
  if (len === 0 || buf.length < 3 + len) return NEED;
  const dest = readDestination(buf, 3);
  return { kind: 'ok', value: { code: buf[1] as number, address: typeof dest === 'string' ? undefined : dest.address }, length: 3 + len };
}

/** True for a name Tor routes to an onion service (v3: 56 base32 characters, subdomains allowed). */
export function isOnionName(host: string): boolean {
  return /(^|\.)[a-z2-7]{56}\.onion\.?$/i.test(host);
}
