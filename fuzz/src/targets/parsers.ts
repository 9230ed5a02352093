// Text and small binary parsers: peer policy rules, the PROXY v1 line, the credential HTTP
// handler, and the shim's SOCKS5 codec.
import { handleCredentialRequest, verify } from '@onionturn/credentials';
import { TokenBucket } from '@onionturn/io';
import { PROXY_V1_MAX, PeerPolicy, parseAllowPeer, parsePolicyRule, parseProxyV1 } from '@onionturn/server';
import { AddressType, connectReplyLength, encodeConnect, encodeGreeting, encodeUserPass, replyText } from '../adapters/socks5.js';
import { havoc } from '../mutate.js';
import { check, type Target } from '../target.js';

const PROBES = ['93.184.216.34', '127.0.0.1', '10.1.2.3', '169.254.169.254', '::1', '::ffff:127.0.0.1', '2001:4860:4860::8888', '64:ff9b::a00:1'].map((a) =>
  a.includes(':') ? ipv6(a) : Buffer.from(a.split('.').map(Number)),
);

function ipv6(text: string): Buffer {
  const [head = '', tail = ''] = text.split('::');
  const words = (s: string): number[] =>
    s === ''
      ? []
      : s
          .split(':')
          .flatMap((w) =>
            w.includes('.')
              ? [(Number(w.split('.')[0]) << 8) | Number(w.split('.')[1]), (Number(w.split('.')[2]) << 8) | Number(w.split('.')[3])]
              : [parseInt(w, 16)],
          );
  const h = words(head);
  const t = words(tail);
  const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

function text(input: Buffer): string {
  return input.toString('latin1');
}

const POLICY_SEEDS = [
  'accept *:*',
  'reject *:25',
  'accept 93.184.216.0/24:3478-3479',
  'reject6 [2001:db8::]/32:*',
  'accept [::ffff:10.0.0.0]/104:1-65535',
  'reject 10.0.0.0/255.0.0.0:80',
  'accept6 *6:443',
  'accept 0.0.0.0/0:0',
  '10.1.0.0/16:3478-3479',
  '[fd00::]/8',
  '  REJECT   192.168.0.1  ',
];

export const peerPolicy: Target = {
  name: 'peer-policy',
  maxSize: 512,
  budgetUs: (n) => 50_000 + 20 * n,
  seeds: () => POLICY_SEEDS.map((s) => Buffer.from(s, 'latin1')),
  mutate: (input, rng, corpus) => havoc(input, rng, corpus, 512),
  run(input) {
    const s = text(input);
    const rule = parsePolicyRule(s);
    const allow = parseAllowPeer(s);
    const out: string[] = [`r:${rule.ok}`, `a:${allow.ok}`];
    for (const r of [rule, allow]) {
      if (!r.ok) {
        check(typeof r.reason === 'string' && r.reason.length > 0, 'a parse error without a reason');
        continue;
      }
      const { rule: p } = r;
      check(p.portMin >= 0 && p.portMax <= 65535 && p.portMin <= p.portMax, `ports ${p.portMin}-${p.portMax}`);
      check(p.network.length === 0 || p.network.length === 4 || p.network.length === 16, `network of ${p.network.length} bytes`);
      check(p.bits >= 0 && p.bits <= p.network.length * 8, `mask of ${p.bits} bits on ${p.network.length} bytes`);
      // The rule in a policy: matching never throws, and the built-in deny list still wins.
      const policy = new PeerPolicy({ rules: [p] });
      for (const ip of PROBES) out.push(String(policy.allows(ip, 3478)));
      check(!policy.allows(PROBES[1] as Buffer, 3478) && !policy.allows(PROBES[3] as Buffer, 80), 'an operator rule reopened loopback or the metadata service');
      out.push(`${p.accept}:${p.family}:${p.bits}`);
    }
    return out.join(',');
  },
};

const PROXY_SEEDS = [
  'PROXY TCP6 fc00:dead:beef:4dad::aabb:ccdd ::1 65535 42\r\nGET',
  'PROXY TCP4 192.0.2.1 127.0.0.1 5000 3478\r\n',
  'PROXY UNKNOWN\r\n',
  'PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n',
  'PROXY TCP6 ::1 ::1 1 2\r\n\x00\x03\x00\x00',
  'PROX',
];

export const proxyHeader: Target = {
  name: 'proxy-header',
  maxSize: 256,
  budgetUs: (n) => 50_000 + 20 * n,
  seeds: () => PROXY_SEEDS.map((s) => Buffer.from(s, 'latin1')),
  mutate: (input, rng, corpus) => havoc(input, rng, corpus, 256),
  run(input) {
    const h = parseProxyV1(input);
    if (h.kind === 'incomplete') {
      check(input.length < PROXY_V1_MAX, 'incomplete after the longest line');
      return 'incomplete';
    }
    if (h.kind === 'error') return `error:${h.reason}`;
    check(h.length >= 8 && h.length <= PROXY_V1_MAX && h.length <= input.length, `header length ${h.length}`);
    check(input[h.length - 2] === 0x0d && input[h.length - 1] === 0x0a, 'header does not end in CRLF');
    if (h.source) check(Number.isInteger(h.source.port) && h.source.port >= 0 && h.source.port <= 65535, `source port ${h.source.port}`);
    if (h.circuitId !== undefined) check(h.source?.family === 'IPv6' && h.circuitId >= 0 && h.circuitId <= 0xffffffff, 'circuit id without a tor source');
    return `ok:${h.source?.family ?? 'unknown'}:${h.circuitId !== undefined}`;
  },
};

const METHODS = ['GET', 'POST', 'OPTIONS', 'HEAD'];
const SECRET = 'fuzz-secret-0123456789';
const NOW = 1_700_000_000_000;

/**
 * Input: byte 0 = flags (bit 0 API keys, bit 1 base path, bit 2 no labels, bit 3 CORS, bits 4-5
 * method, bit 6 a tight rate limit), then lines: the URL, then "name: value" headers.
 */
export const credentialRequest: Target = {
  name: 'credential-request',
  maxSize: 2048,
  budgetUs: (n) => 50_000 + 20 * n,
  seeds: () =>
    [
      '\x00/?service=turn',
      '\x00/credentials?username=bob',
      '\x01/?service=turn&key=k1',
      '\x01/credentials\nauthorization: Bearer k2',
      '\x03/turn/credentials\nx-api-key: k1',
      '\x08/',
      '\x28/',
      '\x04/?service=turn&username=x',
      '\x00//evil.example/?service=turn',
      '\x40/?service=stun',
    ].map((s) => Buffer.from(s, 'latin1')),
  mutate: (input, rng, corpus) => havoc(input, rng, corpus, 2048),
  run(input) {
    const flags = input[0] ?? 0;
    const lines = input.subarray(1).toString('utf8').split('\n');
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const config = {
      secret: SECRET,
      ttl: 3600,
      uris: ['turn:example.onion:3478?transport=tcp'],
      ...(flags & 1 ? { apiKeys: ['k1', 'k2'] } : {}),
      ...(flags & 2 ? { basePath: '/turn' } : {}),
      ...(flags & 4 ? { allowLabels: false } : {}),
      ...(flags & 8 ? { corsOrigin: 'https://app.example' } : {}),
    };
    const context = { now: NOW, ...(flags & 0x40 ? { sourceBucket: new TokenBucket(0, 0, NOW) } : {}) };
    const res = handleCredentialRequest({ method: METHODS[(flags >> 4) & 3] as string, url: lines[0] ?? '', headers }, config, context);
    check(Number.isInteger(res.status) && res.status >= 200 && res.status < 600, `status ${res.status}`);
    check(res.headers['cache-control'] === 'no-store', 'an answer without Cache-Control: no-store');
    if (res.body !== '') {
      const body = JSON.parse(res.body) as Record<string, unknown>;
      if (res.status === 200) {
        check(typeof body.username === 'string' && typeof body.password === 'string', 'a 200 without a credential');
        const v = verify(body.username, body.password, { secrets: [SECRET], now: NOW });
        check(v.ok, `an issued credential does not verify: ${v.ok ? '' : v.error.reason}`);
      }
    }
    return `${res.status}:${res.status === 200 ? '' : res.body.slice(0, 40)}`;
  },
};

/**
 * Input: byte 0 picks the operation: parse a CONNECT reply (the rest is the reply), encode a
 * CONNECT (host = the rest but 2 bytes, port = the last 2), or encode user/password.
 */
export const socks5Codec: Target = {
  name: 'socks5-codec',
  maxSize: 600,
  budgetUs: (n) => 50_000 + 20 * n,
  seeds: () =>
    [
      '00 05 00 00 01 7f 00 00 01 1f 90',
      '00 05 00 00 04 00000000000000000000000000000001 1f 90',
      '00 05 00 00 03 0b 6578616d706c652e636f6d 01bb',
      '00 05 05 00 09',
      '01 6578616d706c652e6f6e696f6e 0d96',
      '01 3139322e302e322e31 0050',
      '01 323030313a6462383a3a31 0050',
      '02 616c696365 00 776f6e6465726c616e64',
    ].map((s) => Buffer.from(s.replace(/\s+/g, ''), 'hex')),
  mutate: (input, rng, corpus) => havoc(input, rng, corpus, 600),
  run(input) {
    const op = (input[0] ?? 0) % 3;
    const rest = input.subarray(1);
    replyText(rest[1] ?? 0);
    if (op === 0) {
      const n = connectReplyLength(rest);
      check(n === -1 || n === 0 || (n >= 7 && n <= 7 + 255 && n <= rest.length), `reply length ${n} for ${rest.length} bytes`);
      return `reply:${n <= 0 ? n : rest[3]}`;
    }
    if (op === 1) {
      if (rest.length < 2) return 'short';
      const host = rest.subarray(0, rest.length - 2).toString('utf8');
      const port = rest.readUInt16BE(rest.length - 2);
      let req: Buffer;
      try {
        req = encodeConnect(host, port);
      } catch (e) {
        check(e instanceof RangeError, `encodeConnect threw ${String(e)}`);
        return 'connect:refused';
      }
      check(req[0] === 5 && req[1] === 1 && req[2] === 0, 'bad CONNECT header');
      check(req.readUInt16BE(req.length - 2) === port, 'port lost');
      const atyp = req[3];
      if (atyp === AddressType.Domain) check(req.subarray(5, req.length - 2).toString('utf8') === host && req[4] === req.length - 7, 'host name lost');
      else check(atyp === AddressType.IPv4 ? req.length === 10 : atyp === AddressType.IPv6 && req.length === 22, `address type ${atyp} of ${req.length} bytes`);
      // A reply of the same shape parses to the same length.
      check(connectReplyLength(req) === req.length, 'a reply shaped like the request has another length');
      return `connect:${atyp}`;
    }
    const i = rest.indexOf(0);
    const username = (i < 0 ? rest : rest.subarray(0, i)).toString('utf8');
    const password = i < 0 ? '' : rest.subarray(i + 1).toString('utf8');
    encodeGreeting(rest.length % 2 === 0 ? undefined : { username, password });
    try {
      const b = encodeUserPass({ username, password });
      check(b[0] === 1 && b[1] === Buffer.byteLength(username) && b.length === 3 + (b[1] as number) + Buffer.byteLength(password), 'bad user/password message');
      return 'userpass:ok';
    } catch (e) {
      check(e instanceof RangeError, `encodeUserPass threw ${String(e)}`);
      return 'userpass:refused';
    }
  },
};
