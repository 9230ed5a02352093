// The PROXY protocol v1 line tor puts before each stream of an onion service configured with
// `HiddenServiceExportCircuitID haproxy`: "PROXY TCP6 fc00:dead:beef:4dad::AABB:CCDD ::1 65535 42\r\n",
// the last 32 bits of the source being the client's circuit id. Behind an onion service every
// client connects from 127.0.0.1; the circuit is the only thing that tells them apart.
import { formatIp, parseIp, type TransportAddress } from '@onionturn/protocol';

/** The spec's longest v1 line, CRLF included. */
export const PROXY_V1_MAX = 107;

/** fc00:dead:beef:4dad::/64: where tor encodes circuit ids. */
const TOR_CIRCUIT_PREFIX = Buffer.from([0xfc, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x4d, 0xad]);

export type ProxyHeader =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'error'; readonly reason: string }
  | {
      readonly kind: 'ok';
      /** Bytes of the header line, CRLF included; what follows is the client's stream. */
      readonly length: number;
      /** The source it names (undefined for "PROXY UNKNOWN"). */
      readonly source: TransportAddress | undefined;
      /** Tor's global circuit id, when the source is in fc00:dead:beef:4dad::/64. */
      readonly circuitId: number | undefined;
    };

/** Parses the start of a stream; never throws, never reads past PROXY_V1_MAX bytes. */
export function parseProxyV1(buf: Buffer): ProxyHeader {
  const limit = Math.min(buf.length, PROXY_V1_MAX);
  let end = -1;
  for (let i = 1; i < limit; i++) {
    if (buf[i - 1] === 0x0d && buf[i] === 0x0a) {
      end = i + 1;
      break;
    }
  }
  if (end < 0) {
    if (buf.length >= PROXY_V1_MAX) return { kind: 'error', reason: 'no PROXY line within 107 bytes' };
    // Whatever has come must still be a prefix of "PROXY ".
    const seen = buf.subarray(0, Math.min(buf.length, 6)).toString('latin1');
    return 'PROXY '.startsWith(seen) ? { kind: 'incomplete' } : { kind: 'error', reason: 'the stream does not start with a PROXY line' };
  }
  const parts = buf
    .subarray(0, end - 2)
    .toString('latin1')
    .split(' ');
  if (parts[0] !== 'PROXY') return { kind: 'error', reason: 'the stream does not start with a PROXY line' };
  if (parts[1] === 'UNKNOWN') return { kind: 'ok', length: end, source: undefined, circuitId: undefined };
  if ((parts[1] !== 'TCP4' && parts[1] !== 'TCP6') || parts.length !== 6)
    return { kind: 'error', reason: 'a PROXY line is "PROXY TCP4|TCP6 SRC DST SPORT DPORT"' };
  const ip = parseIp(parts[2] as string);
  const dst = parseIp(parts[3] as string);
  const want = parts[1] === 'TCP4' ? 4 : 16;
  const port = Number(parts[4]);
  const dport = Number(parts[5]);
  if (!ip || !dst || ip.length !== want || dst.length !== want) return { kind: 'error', reason: 'bad addresses in the PROXY line' };
  if (!/^\d{1,5}$/.test(parts[4] as string) || !/^\d{1,5}$/.test(parts[5] as string) || port > 65535 || dport > 65535) {
    return { kind: 'error', reason: 'bad ports in the PROXY line' };
  }
  const circuitId = want === 16 && ip.subarray(0, 8).equals(TOR_CIRCUIT_PREFIX) ? ip.readUInt32BE(12) : undefined;
  return { kind: 'ok', length: end, source: { family: want === 4 ? 'IPv4' : 'IPv6', address: formatIp(ip), port }, circuitId };
}
