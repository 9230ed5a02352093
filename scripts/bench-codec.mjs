#!/usr/bin/env node
// `npm run bench:codec`: codec speed on typical TURN traffic, side by side with the npm `stun`
// package on the same messages (a benchmark, not a test: it prints, it asserts nothing).
import { createRequire } from 'node:module';
import * as P from '@onionturn/protocol';

const stun = createRequire(import.meta.url)('stun');
const C = stun.constants;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);

function rate(fn) {
  for (let i = 0; i < 2000; i++) fn(); // warm up
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(SECONDS * 1e9));
  let now = start;
  while (now < end) {
    for (let i = 0; i < 500; i++) fn();
    n += 500;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

// stun takes the HMAC key as a string (UTF-8), so both sides use the same printable key; the
// HMAC work is the same as with a 16-byte long-term key.
const keyString = 'c2VjcmV0cGFzc3dvcmRiYXNlNjQ=';
const key = Buffer.from(keyString, 'utf8');
const nonce = 'obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA';

// An authenticated Allocate request as a browser sends it.
const allocate = new P.MessageBuilder(P.Method.Allocate, P.MessageClass.Request)
  .add(P.AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
  .add(P.AttributeType.Username, { kind: 'text', text: '1893456000:0123456789abcdef0123456789abcdef' })
  .add(P.AttributeType.Realm, { kind: 'text', text: 'onionturn' })
  .add(P.AttributeType.Nonce, { kind: 'text', text: nonce })
  .build({ integrityKey: key, fingerprint: true });

const payload = Buffer.alloc(100, 0x61);
const peer = { family: 'IPv4', address: '198.51.100.7', port: 40000 };
const send = new P.MessageBuilder(P.Method.Send, P.MessageClass.Indication)
  .add(P.AttributeType.XorPeerAddress, { kind: 'address', address: peer })
  .add(P.AttributeType.Data, { kind: 'bytes', bytes: payload })
  .build();
const channelData = P.encodeChannelData(0x4001, payload, true);

const rows = [];
function row(name, ours, theirs) {
  rows.push({ name, ours, theirs });
}

// 1. decode + integrity verify of the Allocate request
row(
  'Allocate request: decode + verify MESSAGE-INTEGRITY + FINGERPRINT',
  rate(() => {
    const r = P.decodeMessage(allocate);
    if (!r.ok || P.verifyIntegrity(r.value, key) !== 'ok' || P.verifyFingerprint(r.value) !== 'ok') throw new Error('bad');
    P.readText(r.value, P.AttributeType.Username);
  }),
  rate(() => {
    const m = stun.decode(allocate);
    if (!stun.validateMessageIntegrity(m, keyString) || !stun.validateFingerprint(m)) throw new Error('bad');
    m.getAttribute(C.STUN_ATTR_USERNAME);
  }),
);

// 2. encode the Allocate success response
const tid = allocate.subarray(8, 20);
row(
  'Allocate success: encode with XOR addresses, LIFETIME, integrity, FINGERPRINT',
  rate(() => {
    new P.MessageBuilder(P.Method.Allocate, P.MessageClass.SuccessResponse, tid)
      .add(P.AttributeType.XorRelayedAddress, { kind: 'address', address: { family: 'IPv4', address: '198.51.100.1', port: 50000 } })
      .add(P.AttributeType.XorMappedAddress, { kind: 'address', address: { family: 'IPv4', address: '203.0.113.5', port: 12345 } })
      .add(P.AttributeType.Lifetime, { kind: 'uint32', value: 600 })
      .build({ integrityKey: key, fingerprint: true });
  }),
  rate(() => {
    const m = stun.createMessage(C.STUN_ALLOCATE_RESPONSE, tid);
    m.addAttribute(C.STUN_ATTR_XOR_RELAYED_ADDRESS, '198.51.100.1', 50000);
    m.addAttribute(C.STUN_ATTR_XOR_MAPPED_ADDRESS, '203.0.113.5', 12345);
    m.addAttribute(C.STUN_ATTR_LIFETIME, 600);
    m.addMessageIntegrity(keyString);
    m.addFingerprint();
    m.toBuffer();
  }),
);

// 3. Send indication (100 B): decode, read peer + data
row(
  'Send indication 100 B: decode + XOR-PEER-ADDRESS + DATA',
  rate(() => {
    const r = P.decodeMessage(send);
    if (!r.ok) throw new Error('bad');
    P.readAddressAttribute(r.value, P.AttributeType.XorPeerAddress);
    P.getAttribute(r.value, P.AttributeType.Data);
  }),
  rate(() => {
    const m = stun.decode(send);
    void m.getAttribute(C.STUN_ATTR_XOR_PEER_ADDRESS).value;
    m.getAttribute(C.STUN_ATTR_DATA);
  }),
);

// 4. Data indication (100 B): encode
row(
  'Data indication 100 B: encode',
  rate(() => {
    new P.MessageBuilder(P.Method.Data, P.MessageClass.Indication)
      .add(P.AttributeType.XorPeerAddress, { kind: 'address', address: peer })
      .add(P.AttributeType.Data, { kind: 'bytes', bytes: payload })
      .build();
  }),
  rate(() => {
    const m = stun.createMessage(C.STUN_DATA_INDICATION);
    m.addAttribute(C.STUN_ATTR_XOR_PEER_ADDRESS, peer.address, peer.port);
    m.addAttribute(C.STUN_ATTR_DATA, payload);
    m.toBuffer();
  }),
);

// 4b. the server's relay path writes Data indications into a reused buffer
const out = Buffer.allocUnsafe(2048);
const peerIp = P.parseIp(peer.address);
const relayTid = Buffer.alloc(12, 7);
row(
  'Data indication 100 B: writeDataIndication into a reused buffer (relay path)',
  rate(() => P.writeDataIndication(out, relayTid, peerIp, peer.port, payload)),
  rate(() => {
    const m = stun.createMessage(C.STUN_DATA_INDICATION);
    m.addAttribute(C.STUN_ATTR_XOR_PEER_ADDRESS, peer.address, peer.port);
    m.addAttribute(C.STUN_ATTR_DATA, payload);
    m.toBuffer();
  }),
);

// 5. ChannelData: stun has no ChannelData support
row(
  'ChannelData 100 B: decode',
  rate(() => P.decodeChannelData(channelData)),
  undefined,
);

// 6. TCP framer over a stream of 64 ChannelData frames of 100 B, in 1400-byte chunks
const stream = Buffer.concat(Array.from({ length: 64 }, () => channelData));
const chunks = [];
for (let i = 0; i < stream.length; i += 1400) chunks.push(stream.subarray(i, i + 1400));
let frames = 0;
const framer = new P.StreamFramer(() => {
  frames++;
});
const framerRate = rate(() => {
  for (const c of chunks) framer.push(c);
});
row('TCP framer, ChannelData 100 B frames (per frame)', framerRate * 64, undefined);
if (frames === 0) throw new Error('framer emitted nothing');

const fmt = (x) => (x === undefined ? 'n/a' : Math.round(x).toLocaleString('en-US'));
console.log(`codec benchmark (${SECONDS}s per case, node ${process.version}); messages/s`);
console.log('| case | onionturn | stun 2.1 | ratio |');
console.log('|---|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.name} | ${fmt(r.ours)} | ${fmt(r.theirs)} | ${r.theirs ? (r.ours / r.theirs).toFixed(2) + 'x' : 'n/a (stun has none)'} |`);
}
