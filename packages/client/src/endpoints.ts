// Parsing of the addresses a user types: upstream servers, the SOCKS proxy, the local listener.
// Nothing here resolves a name; hostnames are kept as text for Tor. HOST:PORT itself is io's one
// parser (parseHostPort), re-exported as part of the shim's API.
import { isIP } from 'node:net';
import { formatHostPort, isLoopbackAddress, parseHostPort, type HostPort, type Parsed } from '@onionturn/io';

export { formatHostPort, isLoopbackAddress, parseHostPort, type HostPort, type Parsed };

export type UpstreamTransport = 'tcp' | 'tls';

export interface UpstreamServer {
  readonly transport: UpstreamTransport;
  readonly host: string;
  readonly port: number;
  /** As the user wrote it, for log lines. */
  readonly label: string;
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
