// The SOCKS5 front end's codec (what any local app sends) and the shim's TURN client session (what
// the upstream server, or anyone on a plaintext path, sends back): never a throw, bounded outputs.
import { encodeChannelData } from '@onionturn/protocol';
import {
  TurnClientSession,
  encodeReply,
  encodeUdpHeader,
  parseGreeting,
  parseRequest,
  parseResolveReply,
  parseUdpDatagram,
  parseUserPass,
} from '../adapters/socks5.js';
import { havoc } from '../mutate.js';
import { check, type Target } from '../target.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/**
 * Input: byte 0 picks the operation: 0-4 one of the front end's parsers on the rest; 5 the TURN
 * session fed the rest as upstream bytes in chunks of byte 1 (after its Allocate went out).
 */
export const socksFront: Target = {
  name: 'socks-front',
  maxSize: 2000,
  budgetUs: (n) => 200_000 + 50 * n,
  seeds: () => [
    hex('00 05 02 00 02'),
    hex('01 01 05 616c696365 03 707764'),
    hex('02 05 03 00 01 00000000 1f90'),
    hex('02 05 03 00 03 01 30 d431'),
    hex('03 0000 00 01 7f000001 0035 71756572 79'),
    hex('03 0000 01 04 00000000000000000000000000000001 0035 78'),
    hex('04 05 00 00 01 7f000001 0000'),
    Buffer.concat([hex('05 07'), encodeChannelData(0x4000, Buffer.from('answer'), true)]),
    // A 401 with REALM and NONCE for an unknown transaction, then a Data indication.
    hex('05 40 0113 0020 2112a442 000000000000000000000000 0009 0004 00000401 0014 0004 7265616c 0015 0004 6e6f6e63'),
    hex('05 40 0017 0010 2112a442 000000000000000000000000 0012 0008 0001 e1ba 5e12a443 0013 0000'),
  ],
  mutate: (input, rng, corpus) => havoc(input, rng, corpus, 2000),
  run(input) {
    const op = (input[0] ?? 0) % 6;
    const rest = input.subarray(1);
    if (op === 0) return `greeting:${parseGreeting(rest).kind}`;
    if (op === 1) return `userpass:${parseUserPass(rest).kind}`;
    if (op === 2) {
      const r = parseRequest(rest);
      if (r.kind === 'ok') {
        check(r.length <= rest.length, 'request longer than its input');
        const d = r.value.destination;
        // What the front end would answer about this address is encodable (names of 1-255 bytes).
        if (d.address.kind === 'ip') check(encodeReply(0, { host: d.address.host, port: d.port }).length >= 10, 'reply too short');
      }
      return `request:${r.kind}`;
    }
    if (op === 3) {
      const r = parseUdpDatagram(rest);
      if (r.kind === 'ok') {
        check(r.value.data.length <= rest.length, 'payload longer than the datagram');
        const d = r.value.destination;
        if (Buffer.byteLength(d.address.host) <= 255)
          check(encodeUdpHeader(d.address.host, d.port).length >= (d.address.kind === 'ip' ? 10 : 8), 'header too short');
      }
      return `udp:${r.kind === 'ok' ? r.value.destination.address.kind : r.reason}`;
    }
    if (op === 4) return `resolve:${parseResolveReply(rest).kind}`;
    const chunk = Math.max(1, rest[0] ?? 1);
    const bytes = rest.subarray(1);
    const s = new TurnClientSession({ credential: { username: 'u', password: 'p', expiresAt: 2e12 }, now: 0, random: () => Buffer.alloc(12) });
    s.start(0);
    let closes = 0;
    let delivered = 0;
    for (let i = 0; i < bytes.length && !s.isClosed(); i += chunk) {
      for (const a of s.fromUpstream(bytes.subarray(i, i + chunk), i)) {
        if (a.kind === 'close') closes++;
        if (a.kind === 'deliver') delivered += a.data.length;
      }
    }
    for (const a of s.tick(1e6)) if (a.kind === 'close') closes++;
    check(closes <= 1, `the session closed ${closes} times`);
    check(delivered <= bytes.length, 'delivered more than upstream sent');
    return `session:${s.allocated ? 'allocated' : 'not'}:${s.isClosed() ? 'closed' : 'open'}:${s.dropped > 0 ? 'dropped' : ''}`;
  },
};
