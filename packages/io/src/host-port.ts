// The one parser of `HOST:PORT` as a user types it (the shim's --server/--socks/--listen, every
// command's listen address, the probe's target after its scheme). Nothing here resolves a name;
// hostnames are kept as text (for Tor, which resolves them at the exit).
import { isIP } from 'node:net';

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
  if (!Number.isInteger(port) || port < (allowPortZero ? 0 : 1) || port > 65535)
    return { ok: false, reason: `port in '${text}' is not ${allowPortZero ? 0 : 1}-65535` };
  if (text.startsWith('[')) {
    if (isIP(host) !== 6) return { ok: false, reason: `'${host}' in brackets is not an IPv6 address` };
  } else if (isIP(host) === 0 && !HOSTNAME.test(host)) {
    return { ok: false, reason: `'${host}' is neither an IP address nor a hostname` };
  }
  return { ok: true, value: { host, port } };
}

/** "host:port" with IPv6 in brackets, for URLs and logs. */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Loopback: 127.0.0.0/8 and ::1 (and 127/8 written IPv4-mapped). Names are not loopback. */
export function isLoopbackAddress(host: string): boolean {
  const h = host.toLowerCase();
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}
