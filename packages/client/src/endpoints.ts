// Parsing of the addresses a user types: upstream servers, the SOCKS proxy, the local listener.
// Nothing here resolves a name; hostnames are kept as text for Tor.
import { isIP } from 'node:net';

export type UpstreamTransport = 'tcp' | 'tls';

export interface UpstreamServer {
  readonly transport: UpstreamTransport;
  readonly host: string;
  readonly port: number;
  /** As the user wrote it, for log lines. */
  readonly label: string;
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** "HOST:PORT" or "[V6]:PORT"; HOST may be a name (kept as is) or an IP literal. */
export function parseHostPort(text: string, allowPortZero = false): Parsed<HostPort> {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!m) return { ok: false, reason: `'${text}' is not HOST:PORT (IPv6 as [ADDR]:PORT)` };
  const host = m[1] as string;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < (allowPortZero ? 0 : 1) || port > 65535) return { ok: false, reason: `port in '${text}' is not 1-65535` };
  if (text.startsWith('[') ? isIP(host) !== 6 : isIP(host) === 0 && !HOSTNAME.test(host)) {
    return { ok: false, reason: `'${host}' is neither an IP address nor a hostname` };
  }
  return { ok: true, value: { host, port } };
}

/** `tcp://HOST:PORT`, `tls://HOST:PORT` or `HOST.onion:PORT` (plain TURN-over-TCP to an onion service). */
export function parseUpstream(text: string): Parsed<UpstreamServer> {
  const scheme = /^([a-z]+):\/\/(.*)$/.exec(text);
  let transport: UpstreamTransport = 'tcp';
  let rest = text;
  if (scheme) {
    if (scheme[1] !== 'tcp' && scheme[1] !== 'tls') return { ok: false, reason: `server '${text}': scheme must be tcp:// or tls://` };
    transport = scheme[1];
    rest = scheme[2] as string;
  } else if (!/\.onion:\d+$/i.test(text)) {
    return { ok: false, reason: `server '${text}': use tcp://HOST:PORT, tls://HOST:PORT or HOST.onion:PORT` };
  }
  const hp = parseHostPort(rest);
  if (!hp.ok) return { ok: false, reason: `server '${text}': ${hp.reason}` };
  // What encodeConnect cannot put in a SOCKS5 request must fail here, not when a flow dials.
  if (hp.value.host.includes('%')) return { ok: false, reason: `server '${text}': a scoped address (%zone) cannot go through SOCKS` };
  if (Buffer.byteLength(hp.value.host) > 255) return { ok: false, reason: `server '${text}': the host name is over 255 bytes` };
  return { ok: true, value: { transport, host: hp.value.host, port: hp.value.port, label: text } };
}

/** Loopback: 127.0.0.0/8 and ::1 (and 127/8 written IPv4-mapped). */
export function isLoopbackAddress(host: string): boolean {
  const h = host.toLowerCase();
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/** The local listener: an IP literal; non-loopback only with allowRemote; port 0 picks a free one. */
export function parseListen(text: string, allowRemote: boolean): Parsed<HostPort> {
  const hp = parseHostPort(text, true);
  if (!hp.ok) return { ok: false, reason: `listen: ${hp.reason}` };
  if (isIP(hp.value.host) === 0) return { ok: false, reason: `listen: '${hp.value.host}' must be an IP address (names are not resolved)` };
  if (!allowRemote && !isLoopbackAddress(hp.value.host)) {
    return { ok: false, reason: `listen: ${hp.value.host} is not a loopback address; pass --allow-remote to listen there` };
  }
  return hp;
}

/** "host:port" with IPv6 in brackets, for URLs and logs. */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
