// TurnCore without sockets: every method, the error codes, timers, quotas and filtering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttributeType,
  MessageBuilder,
  MessageClass,
  Method,
  PasswordAlgorithm,
  decodeMessage,
  readAddressAttribute,
  readAttribute,
  readText,
  readUint32,
  verifyFingerprint,
  verifyIntegrity,
  type StunMessage,
} from '@onionturn/protocol';
import { PeerPolicy, parseAllowPeer, parsePolicyRule } from '../src/index.js';
import { PASSWORD, REALM, USER, errorCode, peer, world } from './harness.js';

const PEER = peer('93.184.216.34', 5000);
const UDP = [AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }] as const;

function isSuccess(m: StunMessage): boolean {
  return m.messageClass === MessageClass.SuccessResponse;
}

function dataOf(raw: Buffer): { peer: ReturnType<typeof readAddressAttribute>; data: Buffer } {
  const d = decodeMessage(raw);
  assert.ok(d.ok);
  assert.equal(d.value.method, Method.Data);
  assert.equal(d.value.messageClass, MessageClass.Indication);
  const v = readAttribute(d.value, AttributeType.Data);
  assert.ok(v?.ok && v.value.kind === 'bytes');
  return { peer: readAddressAttribute(d.value, AttributeType.XorPeerAddress), data: Buffer.from(v.value.bytes) };
}

test('Binding answers with XOR-MAPPED-ADDRESS, no auth, FINGERPRINT when asked, no SOFTWARE by default', () => {
  const w = world();
  const c = w.client({ address: '192.0.2.77', port: 1234 });
  const res = c.raw(c.build(Method.Binding, [], false, undefined, { fingerprint: true }))!;
  assert.ok(isSuccess(res));
  assert.deepEqual(readAddressAttribute(res, AttributeType.XorMappedAddress), peer('192.0.2.77', 1234));
  assert.equal(verifyFingerprint(res), 'ok');
  assert.equal(readText(res, AttributeType.Software), undefined);
  const sw = world({ software: 'onionturn' }).client();
  assert.equal(readText(sw.raw(sw.build(Method.Binding, [], false))!, AttributeType.Software), 'onionturn');
});

test('Allocate without credentials gets 401 with realm, nonce and password algorithms, no integrity', () => {
  const c = world().client();
  const res = c.challenge();
  assert.equal(errorCode(res), 401);
  assert.equal(readText(res, AttributeType.Realm), REALM);
  assert.match(readText(res, AttributeType.Nonce) ?? '', /^obMatJos2/);
  const algs = readAttribute(res, AttributeType.PasswordAlgorithms);
  assert.ok(algs?.ok && algs.value.kind === 'password-algorithms');
  assert.deepEqual(
    algs.value.algorithms.map((a) => a.algorithm),
    [PasswordAlgorithm.SHA256, PasswordAlgorithm.MD5],
  );
  assert.equal(res.integrityOffset, -1);
});

test('Allocate succeeds with SHA-1 integrity: relayed address, lifetime, mapped address, signed response', () => {
  const w = world();
  const c = w.client({ address: '192.0.2.9', port: 7777 });
  const res = c.allocate();
  assert.ok(isSuccess(res), `got ${errorCode(res)}`);
  const relayed = readAddressAttribute(res, AttributeType.XorRelayedAddress)!;
  assert.equal(relayed.address, '198.51.100.10');
  assert.ok(relayed.port >= 50000 && relayed.port <= 50099);
  assert.equal(readUint32(res, AttributeType.Lifetime), 600);
  assert.deepEqual(readAddressAttribute(res, AttributeType.XorMappedAddress), peer('192.0.2.9', 7777));
  assert.equal(verifyIntegrity(res, c.key()), 'ok');
  assert.equal(w.core.allocationCount, 1);
  assert.equal(w.relays.length, 1);
});

test('MESSAGE-INTEGRITY-SHA256 with PASSWORD-ALGORITHM SHA-256: accepted and answered in kind', () => {
  const c = world().client();
  c.sha256 = true;
  const res = c.request(Method.Allocate, [UDP], { algorithm: PasswordAlgorithm.SHA256 });
  assert.ok(isSuccess(res), `got ${errorCode(res)}`);
  assert.ok(res.integritySha256Offset >= 0);
  assert.equal(res.integrityOffset, -1);
  assert.equal(verifyIntegrity(res, c.key(PasswordAlgorithm.SHA256)), 'ok');
});

test('wrong password and unknown user get 401; a realm mismatch gets 401', () => {
  const w = world();
  const c = w.client();
  c.password = 'nope';
  assert.equal(errorCode(c.allocate()), 401);
  const u = w.client();
  u.username = 'mallory';
  assert.equal(errorCode(u.allocate()), 401);
  assert.equal(w.core.allocationCount, 0);
  assert.ok(w.core.stats.authFailures >= 2);
});

test('integrity without USERNAME/REALM/NONCE is 400; a forged nonce or an old one is 438', () => {
  const w = world();
  const c = w.client();
  const noUser = new MessageBuilder(Method.Allocate, MessageClass.Request).add(UDP[0], UDP[1]).build({ integrityKey: c.key() });
  assert.equal(errorCode(c.raw(noUser)!), 400);
  c.challenge();
  c.nonce = c.nonce.slice(0, 20) + (c.nonce[20] === 'Q' ? 'R' : 'Q') + c.nonce.slice(21);
  assert.equal(errorCode(c.raw(c.build(Method.Allocate, [UDP], true))!), 438);
  c.challenge();
  w.clock.now += 601_000;
  const stale = c.raw(c.build(Method.Allocate, [UDP], true))!;
  assert.equal(errorCode(stale), 438);
  assert.notEqual(readText(stale, AttributeType.Nonce), c.nonce, '438 carries a fresh nonce');
  // A nonce is bound to the client's transport address.
  const other = w.client();
  other.nonce = readText(stale, AttributeType.Nonce)!;
  assert.equal(errorCode(other.raw(other.build(Method.Allocate, [UDP], true))!), 438);
});

test('Allocate errors: 400 without REQUESTED-TRANSPORT, 442 for TCP, 437 twice, a UDP retransmission answered the same', () => {
  const w = world();
  const c = w.client({}, 'udp');
  assert.equal(errorCode(c.request(Method.Allocate, [])), 400);
  assert.equal(errorCode(c.request(Method.Allocate, [[AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 6 }]])), 442);
  const tid = Buffer.alloc(12, 7);
  const first = c.request(Method.Allocate, [UDP], { tid });
  assert.ok(isSuccess(first));
  const again = c.request(Method.Allocate, [UDP], { tid });
  assert.deepEqual(again.raw, first.raw);
  assert.equal(errorCode(c.request(Method.Allocate, [UDP], { tid: Buffer.alloc(12, 8) })), 437);
  assert.equal(errorCode(c.allocate()), 437);
  assert.equal(w.core.allocationCount, 1);
  // TCP does not retransmit: the same transaction id again is a second Allocate (and the first
  // response is not kept for it).
  const t = w.client({}, 'tcp');
  const tcpFirst = t.request(Method.Allocate, [UDP], { tid });
  assert.ok(isSuccess(tcpFirst));
  assert.equal(errorCode(t.request(Method.Allocate, [UDP], { tid })), 437);
  assert.equal(w.core.allocationCount, 2);
});

test('address families: 440 for IPv6 without an IPv6 relay; dual allocation with one; 443 for a peer of the other family', () => {
  const w = world();
  const c = w.client();
  const v6 = [AttributeType.RequestedAddressFamily, { kind: 'family', family: 'IPv6' }] as const;
  assert.equal(errorCode(c.allocate([UDP, v6])), 440);
  const dualAsk = [AttributeType.AdditionalAddressFamily, { kind: 'family', family: 'IPv6' }] as const;
  const partial = c.allocate([UDP, dualAsk]);
  assert.ok(isSuccess(partial));
  const aec = readAttribute(partial, AttributeType.AddressErrorCode);
  assert.ok(aec?.ok && aec.value.kind === 'address-error-code' && aec.value.code === 440);
  assert.equal(errorCode(c.permit(peer('2001:4860:4860::8888', 53))), 443);

  const w6 = world({ relay6: { bind: '::', external: '2001:4860::10' } });
  const d = w6.client();
  const dual = d.allocate([UDP, dualAsk]);
  assert.ok(isSuccess(dual));
  const relayed = dual.attributes.filter((a) => a.type === AttributeType.XorRelayedAddress);
  assert.equal(relayed.length, 2);
  assert.ok(isSuccess(d.permit(peer('2001:4860:4860::8888', 53))));
  assert.ok(isSuccess(d.permit(PEER)));
  assert.equal(errorCode(d.allocate([UDP, v6, dualAsk])), 437);
  const both = w6.client();
  assert.equal(errorCode(both.allocate([UDP, v6, dualAsk])), 400);
});

test('an IPv4-mapped peer (::ffff:a.b.c.d) is a peer of the other family: 443, or 403 when the policy denies it', () => {
  const w = world({ relay6: { bind: '2001:db8::10', external: '2001:db8::10' } });
  const v6 = [AttributeType.RequestedAddressFamily, { kind: 'family', family: 'IPv6' }] as const;
  const dualAsk = [AttributeType.AdditionalAddressFamily, { kind: 'family', family: 'IPv6' }] as const;
  for (const ask of [
    [UDP, v6],
    [UDP, dualAsk],
  ] as const) {
    const c = w.client();
    assert.ok(isSuccess(c.allocate([...ask])));
    const mapped = peer('::ffff:93.184.216.34', 5000);
    // Accepted, it would relay nothing: a socket bound to an IPv6 address cannot send IPv4.
    assert.equal(errorCode(c.permit(mapped)), 443, 'CreatePermission');
    assert.equal(errorCode(c.bind(0x4000, mapped)), 443, 'ChannelBind');
    assert.equal(errorCode(c.permit(PEER, mapped)), 443, 'all or nothing');
    assert.equal(errorCode(c.permit(peer('::ffff:10.0.0.1', 5000))), 403, 'a denied address is 403 however it is spelled');
    assert.equal(errorCode(c.permit(peer('::ffff:127.0.0.1', 5000))), 403);
    c.send(mapped, Buffer.from('x'));
  }
  for (const r of w.relays) assert.equal(r.sent.length, 0);
});

test('an IPv6 EVEN-PORT pair: the RESERVATION-TOKEN allocation is IPv6 too, on the reserved port', () => {
  const w = world({ relay6: { bind: '2001:db8::10', external: '2001:db8::10' } });
  const v6 = [AttributeType.RequestedAddressFamily, { kind: 'family', family: 'IPv6' }] as const;
  const first = w.client().allocate([UDP, v6, [AttributeType.EvenPort, { kind: 'even-port', reserve: true }]]);
  assert.ok(isSuccess(first), `got ${errorCode(first)}`);
  const rtp = readAddressAttribute(first, AttributeType.XorRelayedAddress)!;
  assert.deepEqual([rtp.family, rtp.address, rtp.port % 2], ['IPv6', '2001:db8::10', 0]);
  const token = readAttribute(first, AttributeType.ReservationToken);
  assert.ok(token?.ok && token.value.kind === 'bytes');
  const b = w.client({ family: 'IPv6', address: '2001:db8::99' });
  const second = b.allocate([UDP, [AttributeType.ReservationToken, { kind: 'bytes', bytes: Buffer.from(token.value.bytes) }]]);
  assert.ok(isSuccess(second), `got ${errorCode(second)}`);
  const rtcp = readAddressAttribute(second, AttributeType.XorRelayedAddress)!;
  assert.deepEqual(rtcp, { family: 'IPv6', address: '2001:db8::10', port: rtp.port + 1 });
  assert.equal(w.relays.at(-1)!.relay.family, 'IPv6');
  assert.ok(isSuccess(b.permit(peer('2001:4860:4860::8888', 53))), 'an IPv6 allocation takes IPv6 peers');
  // The IPv4 pair still gives an IPv4 token allocation.
  const v4 = w.client().allocate([UDP, [AttributeType.EvenPort, { kind: 'even-port', reserve: true }]]);
  const t4 = readAttribute(v4, AttributeType.ReservationToken);
  assert.ok(t4?.ok && t4.value.kind === 'bytes');
  const v4b = w.client().allocate([UDP, [AttributeType.ReservationToken, { kind: 'bytes', bytes: Buffer.from(t4.value.bytes) }]]);
  assert.equal(readAddressAttribute(v4b, AttributeType.XorRelayedAddress)!.family, 'IPv4');
});

test('ADDITIONAL-ADDRESS-FAMILY with a RESERVATION-TOKEN or with EVEN-PORT R: 400 (RFC 8656 §7.2), nothing reserved', () => {
  const w = world({ relay6: { bind: '2001:db8::10', external: '2001:db8::10' } });
  const dualAsk = [AttributeType.AdditionalAddressFamily, { kind: 'family', family: 'IPv6' }] as const;
  const pair = w.client().allocate([UDP, [AttributeType.EvenPort, { kind: 'even-port', reserve: true }]]);
  const token = readAttribute(pair, AttributeType.ReservationToken);
  assert.ok(token?.ok && token.value.kind === 'bytes');
  const tokenAttr = [AttributeType.ReservationToken, { kind: 'bytes', bytes: Buffer.from(token.value.bytes) }] as const;
  assert.equal(errorCode(w.client().allocate([UDP, tokenAttr, dualAsk])), 400, 'token + ADDITIONAL-ADDRESS-FAMILY');
  const relaysBefore = w.relays.length;
  assert.equal(
    errorCode(w.client().allocate([UDP, dualAsk, [AttributeType.EvenPort, { kind: 'even-port', reserve: true }]])),
    400,
    'EVEN-PORT R + ADDITIONAL-ADDRESS-FAMILY',
  );
  assert.equal(w.relays.length, relaysBefore, 'no relay bound, no port reserved');
  const refused = w.client().allocate([UDP, tokenAttr]);
  assert.ok(isSuccess(refused), 'a refused request leaves the token usable');
  const evenDual = w.client().allocate([UDP, dualAsk, [AttributeType.EvenPort, { kind: 'even-port', reserve: false }]]);
  assert.ok(isSuccess(evenDual), 'EVEN-PORT without R and a dual allocation are fine');
  const ports = evenDual.attributes.filter((a) => a.type === AttributeType.XorRelayedAddress);
  assert.equal(ports.length, 2);
  assert.equal(readAttribute(evenDual, AttributeType.ReservationToken), undefined);
});

test('unknown comprehension-required attributes: 420 listing them (after auth), Binding too', () => {
  const c = world().client();
  const b = new MessageBuilder(Method.Binding, MessageClass.Request).addRaw(0x0031, Buffer.alloc(4)).build();
  const res = c.raw(b)!;
  assert.equal(errorCode(res), 420);
  const ua = readAttribute(res, AttributeType.UnknownAttributes);
  assert.ok(ua?.ok && ua.value.kind === 'unknown-attributes');
  assert.deepEqual(ua.value.types, [0x0031]);
  c.challenge();
  const b2 = new MessageBuilder(Method.Allocate, MessageClass.Request)
    .add(UDP[0], UDP[1])
    .addRaw(0x0032, Buffer.alloc(4))
    .add(AttributeType.Username, { kind: 'text', text: USER })
    .add(AttributeType.Realm, { kind: 'text', text: REALM })
    .add(AttributeType.Nonce, { kind: 'text', text: c.nonce })
    .build({ integrityKey: c.key() });
  const r2 = c.raw(b2)!;
  assert.equal(errorCode(r2), 420);
  assert.equal(verifyIntegrity(r2, c.key()), 'ok');
});

test('Refresh: 437 without allocation, new lifetime clamped to the maximum, 0 deletes and frees the port', () => {
  const w = world();
  const c = w.client();
  assert.equal(errorCode(c.request(Method.Refresh, [])), 437);
  c.allocate();
  const r = c.request(Method.Refresh, [[AttributeType.Lifetime, { kind: 'uint32', value: 99999 }]]);
  assert.equal(readUint32(r, AttributeType.Lifetime), 3600);
  const del = c.request(Method.Refresh, [[AttributeType.Lifetime, { kind: 'uint32', value: 0 }]]);
  assert.ok(isSuccess(del));
  assert.equal(readUint32(del, AttributeType.Lifetime), 0);
  assert.equal(w.core.allocationCount, 0);
  assert.equal(w.relays[0]!.closed, true);
  // The shell cancels the connection's allocate deadline while it holds an allocation, arms it after.
  assert.deepEqual(c.link.holding, ['allocated', 'released']);
});

test('a request from the allocation tuple with another username gets 441; an Allocate gets 437 once its own credentials check out', () => {
  const w = world({ users: { [USER]: PASSWORD, bob: 'builder' } });
  const c = w.client({}, 'udp');
  c.allocate();
  c.username = 'bob';
  c.password = 'builder';
  assert.equal(errorCode(c.request(Method.Refresh, [])), 441);
  assert.equal(errorCode(c.permit(peer('8.8.8.8', 9))), 441);
  // A new client on a port whose allocation lives on: 437 tells it to try another port.
  assert.equal(errorCode(c.allocate()), 437);
  c.password = 'not-it';
  assert.equal(errorCode(c.allocate()), 401);
  assert.equal(w.core.allocationCount, 1);
});

test('CreatePermission: denied peers get 403 and nothing is ever sent to them', () => {
  const w = world();
  const c = w.client();
  c.allocate();
  for (const bad of ['127.0.0.1', '10.1.2.3', '169.254.169.254', '::ffff:127.0.0.1', '203.0.113.1', '0.0.0.0']) {
    const res = c.permit(peer(bad, 9));
    assert.equal(errorCode(res), bad.includes(':') ? 443 : 403, bad);
    c.send(peer(bad, 9), Buffer.from('x'));
  }
  assert.equal(errorCode(c.permit(PEER, peer('192.168.1.1', 1))), 403, 'one bad peer fails the whole request');
  assert.equal(w.relays[0]!.sent.length, 0);
  assert.equal(errorCode(c.request(Method.CreatePermission, [])), 400);
});

test('Send and Data indications; address-and-port-dependent filtering by default', () => {
  const w = world();
  const c = w.client();
  c.allocate();
  const relay = w.relays[0]!;
  // Before any permission: nothing goes out, nothing comes in.
  c.send(PEER, Buffer.from('early'));
  w.core.handlePeerDatagram(relay.relay, Buffer.from('hi'), PEER.address, PEER.port);
  assert.equal(relay.sent.length, 0);
  assert.equal(c.link.messages.length, 2); // 401, success, nothing more
  assert.ok(isSuccess(c.permit(PEER)));
  // The peer may not talk first: the client has not sent to it yet.
  w.core.handlePeerDatagram(relay.relay, Buffer.from('first'), PEER.address, PEER.port);
  const before = c.link.messages.length;
  assert.equal(before, 3);
  c.send(PEER, Buffer.from('hello'));
  assert.deepEqual(relay.sent, [{ data: Buffer.from('hello'), port: PEER.port, address: PEER.address }]);
  w.core.handlePeerDatagram(relay.relay, Buffer.from('reply'), PEER.address, PEER.port);
  assert.equal(c.link.messages.length, before + 1);
  const d = dataOf(c.link.messages.at(-1)!);
  assert.deepEqual(d.peer, PEER);
  assert.deepEqual(d.data, Buffer.from('reply'));
  // Same address, another port: filtered.
  w.core.handlePeerDatagram(relay.relay, Buffer.from('other'), PEER.address, PEER.port + 1);
  assert.equal(c.link.messages.length, before + 1);
  assert.ok(w.core.stats.droppedFiltered >= 2);
});

test('a relay with one peer is told so (connected socket); a second peer or its expiry undoes it', () => {
  const w = world();
  const c = w.client();
  c.allocate();
  const relay = w.relays[0]!;
  c.permit(PEER);
  assert.equal(relay.solePeer, undefined, 'a permission alone makes no peer');
  c.send(PEER, Buffer.from('a'));
  assert.deepEqual(relay.solePeer, { port: PEER.port, address: PEER.address });
  const other = peer('93.184.216.99', 7000);
  c.permit(other);
  c.send(other, Buffer.from('b'));
  assert.equal(relay.solePeer, undefined, 'two peers: unconnected before the second is sent to');
  assert.deepEqual(
    relay.sent.map((s) => s.port),
    [PEER.port, 7000],
  );
  // Only the second permission is refreshed; the first expires and its peer goes.
  w.clock.now += 200_000;
  c.permit(other);
  w.clock.now += 150_000;
  w.core.tick();
  assert.deepEqual(relay.solePeer, { port: 7000, address: other.address });
  // Filtering still applies in JS: the remaining peer answers once the client has sent lately.
  c.send(other, Buffer.from('c'));
  w.core.handlePeerDatagram(relay.relay, Buffer.from('r'), other.address, 7000);
  assert.equal(dataOf(c.link.messages.at(-1)!).peer?.port, 7000);
});

test('--filtering address never connects: any port of a permitted address may answer', () => {
  const w = world({ filtering: 'address' });
  const c = w.client();
  c.allocate();
  c.permit(PEER);
  c.send(PEER, Buffer.from('a'));
  assert.equal(w.relays[0]!.solePeer, undefined);
});

test('--filtering address delivers from any port of a permitted address', () => {
  const w = world({ filtering: 'address' });
  const c = w.client();
  c.allocate();
  c.permit(PEER);
  const n = c.link.messages.length;
  w.core.handlePeerDatagram(w.relays[0]!.relay, Buffer.from('x'), PEER.address, 6000);
  assert.equal(c.link.messages.length, n + 1);
  assert.equal(dataOf(c.link.messages.at(-1)!).peer?.port, 6000);
});

test("--filtering address: a peer spraying ports spends none of the client's peer quota", () => {
  const w = world({ filtering: 'address', limits: { peersPerAllocation: 3, newPeersPerSecond: 4 } });
  const c = w.client();
  c.allocate();
  c.permit(PEER);
  const n = c.link.messages.length;
  for (let p = 6000; p < 6100; p++) w.core.handlePeerDatagram(w.relays[0]!.relay, Buffer.from('x'), PEER.address, p);
  assert.equal(c.link.messages.length, n + 100, 'every port delivered');
  assert.ok(isSuccess(c.bind(0x4001, PEER)), 'the client can still bind a channel to a new peer');
  c.send(peer(PEER.address, 7001), Buffer.from('y'));
  assert.equal(w.relays[0]!.sent.at(-1)?.port, 7001, 'and send to another new one');
});

test('peer port 0: ChannelBind gets 400, a Send indication is dropped', () => {
  const w = world();
  const c = w.client();
  c.allocate();
  assert.ok(isSuccess(c.permit(peer(PEER.address, 0))), 'CreatePermission ignores the port');
  assert.equal(errorCode(c.bind(0x4001, peer(PEER.address, 0))), 400);
  const malformed = w.core.stats.malformed;
  c.send(peer(PEER.address, 0), Buffer.from('x'));
  assert.equal(w.relays[0]!.sent.length, 0);
  assert.equal(w.core.stats.malformed, malformed + 1);
});

test('ChannelBind: ChannelData both ways, rebinding rules, 400 for bad numbers', () => {
  const w = world();
  const c = w.client();
  c.allocate();
  assert.equal(errorCode(c.bind(0x3fff, PEER)), 400);
  assert.equal(errorCode(c.bind(0x8000, PEER)), 400);
  assert.equal(errorCode(c.bind(0x4000, peer('127.0.0.1', 1))), 403);
  assert.ok(isSuccess(c.bind(0x4001, PEER)));
  assert.ok(isSuccess(c.bind(0x4001, PEER)), 'refreshing the same binding is fine');
  assert.equal(errorCode(c.bind(0x4001, peer('93.184.216.35', 5000))), 400, 'number already bound to another peer');
  assert.equal(errorCode(c.bind(0x4002, PEER)), 400, 'peer already bound to another number');
  const relay = w.relays[0]!;
  c.channelData(0x4001, Buffer.from('via channel'));
  assert.deepEqual(relay.sent.at(-1), { data: Buffer.from('via channel'), port: PEER.port, address: PEER.address });
  c.channelData(0x4003, Buffer.from('unbound'));
  assert.equal(relay.sent.length, 1);
  w.core.handlePeerDatagram(relay.relay, Buffer.from('back'), PEER.address, PEER.port);
  assert.deepEqual(c.link.channelData, [{ channel: 0x4001, data: Buffer.from('back') }]);
});

test('strict RFC 8656 channel range refuses 0x5000; the default (RFC 5766 clients) accepts it', () => {
  const strict = world({ channelRange: 'rfc8656' }).client();
  strict.allocate();
  assert.equal(errorCode(strict.bind(0x5000, PEER)), 400);
  const compat = world().client();
  compat.allocate();
  assert.ok(isSuccess(compat.bind(0x5000, PEER)));
});

test('timers: permissions end after 300 s, channels after 600 s (reserved 300 s more), allocations at their lifetime', () => {
  const w = world();
  const c = w.client();
  c.allocate();
  assert.equal(readUint32(c.request(Method.Refresh, [[AttributeType.Lifetime, { kind: 'uint32', value: 1200 }]]), AttributeType.Lifetime), 1200);
  c.permit(PEER);
  const relay = w.relays[0]!;
  w.clock.now += 299_000;
  c.send(PEER, Buffer.from('a'));
  assert.equal(relay.sent.length, 1);
  w.clock.now += 2_000;
  w.core.tick();
  c.send(PEER, Buffer.from('b'));
  assert.equal(relay.sent.length, 1, 'permission expired');
  c.bind(0x4100, PEER);
  w.clock.now += 601_000;
  w.core.tick();
  c.channelData(0x4100, Buffer.from('late'));
  assert.equal(relay.sent.length, 1, 'channel expired');
  assert.equal(errorCode(c.bind(0x4100, peer('93.184.216.99', 1))), 400, 'number still reserved');
  w.clock.now += 300_000;
  w.core.tick();
  assert.equal(w.core.allocationCount, 0, 'allocation expired at the end of its 1200 s');
  assert.equal(relay.closed, true);
  assert.deepEqual(c.link.holding, ['allocated', 'released'], 'the connection is idle-timed again');
});

test('shutdown while a relay socket is still binding: the late socket is closed at once, nothing answered', () => {
  const w = world();
  const c = w.client();
  c.challenge();
  w.holdBinds = true;
  const sent = c.link.messages.length;
  c.raw(c.build(Method.Allocate, [[AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }]], true));
  assert.equal(w.heldBinds.length, 1, 'the bind is under way');
  w.core.closeAll();
  for (const finish of w.heldBinds.splice(0)) finish();
  assert.equal(w.relays.length, 1);
  assert.equal(w.relays[0]!.closed, true, 'the socket bound after the shutdown is closed');
  assert.equal(w.core.allocationCount, 0);
  assert.equal(c.link.messages.length, sent, 'no success (nor error) for a deleted allocation');
  assert.equal(c.client.allocation, undefined);
});

test('a closed client frees its allocation at once; its port rests in quarantine', () => {
  const w = world({ limits: { allocationsPerUser: 1000 } });
  const c = w.client();
  c.allocate();
  const port = w.relays[0]!.relay.port;
  w.core.clientClosed(c.client);
  assert.equal(w.core.allocationCount, 0);
  assert.equal(w.relays[0]!.closed, true);
  assert.deepEqual(c.link.holding, ['allocated'], 'a gone connection gets no idle timer back');
  for (let i = 0; i < 99; i++) {
    const x = w.client();
    assert.ok(isSuccess(x.allocate()));
    assert.notEqual(w.relays.at(-1)!.relay.port, port);
  }
  // Every other port in use: availability beats the quarantine, the resting port is reused early.
  assert.ok(isSuccess(w.client().allocate()));
  assert.equal(w.relays.at(-1)!.relay.port, port);
  assert.equal(errorCode(w.client().allocate()), 508, 'all 100 ports in use');
});

test('allocate and release in a loop cannot lock others out: ports reused early, reservations count per user', () => {
  const w = world({ users: { [USER]: PASSWORD, bob: 'builder' }, limits: { allocationsPerUser: 8 } });
  const c = w.client();
  const codes: (number | undefined)[] = [];
  for (let i = 0; i < 300; i++) {
    const res = c.allocate([UDP, [AttributeType.EvenPort, { kind: 'even-port', reserve: true }]]);
    codes.push(errorCode(res));
    if (isSuccess(res)) c.request(Method.Refresh, [[AttributeType.Lifetime, { kind: 'uint32', value: 0 }]]);
  }
  assert.equal(codes.filter((x) => x === undefined).length, 8, 'each held reservation counts: 8 cycles, then 486');
  assert.equal(codes.at(-1), 486);
  const other = w.client();
  other.username = 'bob';
  other.password = 'builder';
  assert.ok(isSuccess(other.allocate()), 'another user still gets a relay');
  w.clock.now += 31_000;
  w.core.tick();
  assert.ok(isSuccess(c.allocate()), 'reservations expired: the first user is below quota again');
});

test("a token of the user's own reservation does not count twice against the quota", () => {
  const w = world({ limits: { allocationsPerUser: 2 } });
  const a = w.client();
  const res = a.allocate([UDP, [AttributeType.EvenPort, { kind: 'even-port', reserve: true }]]);
  const token = readAttribute(res, AttributeType.ReservationToken);
  assert.ok(token?.ok && token.value.kind === 'bytes');
  assert.ok(
    isSuccess(w.client().allocate([UDP, [AttributeType.ReservationToken, { kind: 'bytes', bytes: Buffer.from(token.value.bytes) }]])),
    '1 allocation + 1 reservation turned into one',
  );
});

test('a port in use by someone else is skipped', () => {
  const w = world();
  for (let p = 50000; p < 50099; p++) w.busy.add(p);
  const c = w.client();
  const res = c.allocate();
  // 16 attempts among 100 ports, only one free: usually 508; when it is found it must be 50099.
  if (isSuccess(res)) assert.equal(readAddressAttribute(res, AttributeType.XorRelayedAddress)?.port, 50099);
  else assert.equal(errorCode(res), 508);
});

test('quotas: 486 per user, 508 in total, 508 for permissions and channels, new-peer rate', () => {
  const w = world({ limits: { allocationsPerUser: 2, allocations: 3, permissionsPerAllocation: 2, channelsPerAllocation: 1, newPeersPerSecond: 1000 } });
  assert.ok(isSuccess(w.client().allocate()));
  const c = w.client();
  assert.ok(isSuccess(c.allocate()));
  assert.equal(errorCode(w.client().allocate()), 486);
  const w2 = world({ users: { a: 'x', b: 'y' }, limits: { allocations: 1 } });
  const a = w2.client();
  a.username = 'a';
  a.password = 'x';
  assert.ok(isSuccess(a.allocate()));
  const b = w2.client();
  b.username = 'b';
  b.password = 'y';
  assert.equal(errorCode(b.allocate()), 508);
  assert.ok(isSuccess(c.permit(peer('93.184.216.1', 1), peer('93.184.216.2', 1))));
  assert.equal(errorCode(c.permit(peer('93.184.216.3', 1))), 508);
  assert.ok(isSuccess(c.bind(0x4000, peer('93.184.216.1', 1))));
  assert.equal(errorCode(c.bind(0x4001, peer('93.184.216.2', 1))), 508);
  const slow = world({ limits: { newPeersPerSecond: 2 } }).client();
  slow.allocate();
  assert.ok(isSuccess(slow.permit(peer('93.184.216.1', 1))));
  assert.ok(isSuccess(slow.permit(peer('93.184.216.2', 1))));
  assert.equal(errorCode(slow.permit(peer('93.184.216.3', 1))), 508);
});

test('consent: sends to a peer that never answers stop after the limit, resume once it answers', () => {
  const w = world({ limits: { unansweredSends: 3 } });
  const c = w.client();
  c.allocate();
  c.permit(PEER);
  for (let i = 0; i < 5; i++) c.send(PEER, Buffer.from([i]));
  const relay = w.relays[0]!;
  assert.equal(relay.sent.length, 3);
  assert.equal(w.core.stats.droppedConsent, 2);
  w.core.handlePeerDatagram(relay.relay, Buffer.from('pong'), PEER.address, PEER.port);
  c.send(PEER, Buffer.from('more'));
  assert.equal(relay.sent.length, 4);
});

test('consent is per peer address: hopping ports buys no new budget; an allocation has one budget over all addresses', () => {
  const w = world({ limits: { unansweredSends: 5, unansweredSendsPerAllocation: 8, newPeersPerSecond: 1000 } });
  const c = w.client();
  c.allocate();
  const relay = w.relays[0]!;
  c.permit(PEER);
  for (let port = 1000; port < 1010; port++) c.send(peer(PEER.address, port), Buffer.from('x'));
  assert.equal(relay.sent.length, 5, 'ten ports of one address share its five unanswered sends');
  const other = peer('93.184.216.35', 7000);
  c.permit(other);
  for (let port = 7000; port < 7010; port++) c.send(peer(other.address, port), Buffer.from('y'));
  assert.equal(relay.sent.length, 8, 'the allocation stops at eight over all addresses');
  assert.equal(w.core.stats.droppedConsent, 12);
  // A port that answers has consented: sends to it flow, whatever the budgets say.
  w.core.handlePeerDatagram(relay.relay, Buffer.from('pong'), PEER.address, 1000);
  for (let i = 0; i < 3; i++) c.send(peer(PEER.address, 1000), Buffer.from('z'));
  assert.equal(relay.sent.length, 11);
  c.send(peer(PEER.address, 1001), Buffer.from('still not answered'));
  assert.equal(relay.sent.length, 11);
});

test('bandwidth: a token bucket per allocation drops the excess', () => {
  const w = world({ limits: { bandwidthPerAllocation: 1000 } });
  const c = w.client();
  c.allocate();
  c.permit(PEER);
  for (let i = 0; i < 5; i++) c.send(PEER, Buffer.alloc(300));
  assert.equal(w.relays[0]!.sent.length, 3);
  w.clock.now += 1000;
  c.send(PEER, Buffer.alloc(300));
  assert.equal(w.relays[0]!.sent.length, 4);
});

test('expired REST-style credentials cannot allocate; by default (strict expiry) they cannot refresh either', () => {
  const clockRef = { exp: 0 };
  const lookup = (): { passwords: string[]; expiresAtMs: number } => ({ passwords: [PASSWORD], expiresAtMs: clockRef.exp });
  for (const strict of [undefined, false, true]) {
    const w = world({ lookup, ...(strict !== undefined ? { strictExpiry: strict } : {}) });
    clockRef.exp = w.clock.now - 1;
    assert.equal(errorCode(w.client().allocate()), 401);
    clockRef.exp = w.clock.now + 1000;
    const c = w.client();
    assert.ok(isSuccess(c.allocate()));
    w.clock.now += 2000;
    const r = c.request(Method.Refresh, []);
    assert.equal(isSuccess(r), strict === false, `strictExpiry ${strict}`);
    if (strict !== false) assert.equal(errorCode(r), 401);
    // Deleting is always allowed.
    assert.ok(isSuccess(c.request(Method.Refresh, [[AttributeType.Lifetime, { kind: 'uint32', value: 0 }]])));
    assert.equal(w.core.allocationCount, 0);
  }
});

test('strict expiry: an allocation lives no longer than its credential (Allocate and Refresh lifetimes are cut to it)', () => {
  const w = world({ lookup: () => ({ passwords: [PASSWORD], expiresAtMs: exp }) });
  const exp = w.clock.now + 120_500;
  const c = w.client();
  assert.equal(readUint32(c.allocate(), AttributeType.Lifetime), 121, 'the default 600 s cut to the credential');
  w.clock.now += 100_000;
  assert.equal(readUint32(c.request(Method.Refresh, [[AttributeType.Lifetime, { kind: 'uint32', value: 3600 }]]), AttributeType.Lifetime), 21);
  w.clock.now += 21_000;
  w.core.tick();
  assert.equal(w.core.allocationCount, 0, 'gone with its credential');
});

test('a second secret (rotation) works: every candidate password is tried', () => {
  const w = world({ lookup: () => ({ passwords: ['newest', PASSWORD] }) });
  assert.ok(isSuccess(w.client().allocate()));
});

test('malformed input: a broken request gets 400 from its header; garbage and responses are ignored', () => {
  const w = world();
  const c = w.client();
  const good = c.build(Method.Binding, [], false);
  const broken = Buffer.concat([good, Buffer.from([0x00, 0x20, 0x00, 0x08, 1, 2])]);
  broken.writeUInt16BE(broken.length - 20 + 2, 2); // length not matching the attribute walk
  const bad = Buffer.from(broken.subarray(0, good.length + 8));
  bad.writeUInt16BE(8, 2);
  bad.writeUInt16BE(0x0020, 20);
  bad.writeUInt16BE(0x0040, 22); // attribute runs past the end
  const res = c.raw(bad)!;
  assert.equal(errorCode(res), 400);
  assert.deepEqual(res.transactionId, bad.subarray(8, 20));
  assert.equal(c.raw(Buffer.from('GET / HTTP/1.1\r\n\r\n')), undefined);
  w.core.handleClientDatagram(c.client, Buffer.from([0xff, 0, 0, 0]));
  const resp = new MessageBuilder(Method.Binding, MessageClass.SuccessResponse).build();
  assert.equal(c.raw(resp), undefined);
  assert.equal(errorCode(c.raw(new MessageBuilder(0x00b, MessageClass.Request).build())!), 400, 'unknown method');
  // The server still works for this client afterwards.
  assert.ok(isSuccess(c.allocate()));
});

test('--allow-peer ranges come before the deny list; SIGHUP-style reload applies to new requests only', () => {
  const rule = parseAllowPeer('10.0.0.0/8:3478');
  assert.ok(rule.ok);
  const w = world({ policy: new PeerPolicy({ allowed: [rule.rule] }) });
  const c = w.client();
  c.allocate();
  assert.ok(isSuccess(c.permit(peer('10.1.1.1', 3478))));
  assert.equal(errorCode(c.permit(peer('10.1.1.1', 3479))), 403);
  w.core.reload(new PeerPolicy(), () => ({ passwords: [PASSWORD] }));
  assert.equal(errorCode(c.permit(peer('10.1.1.2', 3478))), 403);
  assert.equal(w.core.allocationCount, 1);
});

test('SIGHUP: a static user removed (or given a new password) loses its allocations; the others stay', () => {
  const w = world({ users: { alice: 'a-pw', bob: 'b-pw', carol: 'c-pw' } });
  const clients = (['alice', 'bob', 'carol'] as const).map((name) => {
    const c = w.client();
    c.username = name;
    c.password = `${name[0]}-pw`;
    assert.ok(isSuccess(c.allocate()), name);
    return c;
  });
  assert.equal(w.core.allocationCount, 3);
  w.core.reload(new PeerPolicy(), (u) => ({ alice: { passwords: ['a-pw'] }, carol: { passwords: ['new-pw'] } })[u]);
  assert.equal(w.core.allocationCount, 1);
  assert.ok(clients[0]!.client.allocation, 'alice keeps hers');
  for (const c of clients.slice(1)) {
    assert.equal(c.client.allocation, undefined);
    assert.deepEqual(c.link.holding, ['allocated', 'released'], 'the shell is told (the allocate deadline closes the connection)');
  }
  assert.equal(w.relays.filter((r) => r.closed).length, 2, 'their relay sockets are closed');
});

test('EVEN-PORT with R: an even port, a RESERVATION-TOKEN for the next one, good once, for 30 s', () => {
  const w = world();
  const a = w.client();
  const res = a.allocate([UDP, [AttributeType.EvenPort, { kind: 'even-port', reserve: true }]]);
  assert.ok(isSuccess(res), `got ${errorCode(res)}`);
  const port = readAddressAttribute(res, AttributeType.XorRelayedAddress)!.port;
  assert.equal(port % 2, 0);
  const token = readAttribute(res, AttributeType.ReservationToken);
  assert.ok(token?.ok && token.value.kind === 'bytes' && token.value.bytes.length === 8);
  const tokenAttr = [AttributeType.ReservationToken, { kind: 'bytes', bytes: Buffer.from(token.value.bytes) }] as const;
  const b = w.client();
  const second = b.allocate([UDP, tokenAttr]);
  assert.ok(isSuccess(second));
  assert.equal(readAddressAttribute(second, AttributeType.XorRelayedAddress)!.port, port + 1);
  assert.equal(errorCode(w.client().allocate([UDP, tokenAttr])), 508, 'a token is good once');
  assert.equal(errorCode(w.client().allocate([UDP, tokenAttr, [AttributeType.EvenPort, { kind: 'even-port', reserve: false }]])), 400);
  const c = w.client();
  const third = c.allocate([UDP, [AttributeType.EvenPort, { kind: 'even-port', reserve: true }]]);
  const t3 = readAttribute(third, AttributeType.ReservationToken);
  assert.ok(t3?.ok && t3.value.kind === 'bytes');
  w.clock.now += 31_000;
  w.core.tick();
  assert.equal(errorCode(w.client().allocate([UDP, [AttributeType.ReservationToken, { kind: 'bytes', bytes: Buffer.from(t3.value.bytes) }]])), 508, 'expired');
  const plainEven = w.client().allocate([UDP, [AttributeType.EvenPort, { kind: 'even-port', reserve: false }]]);
  assert.equal(readAddressAttribute(plainEven, AttributeType.XorRelayedAddress)!.port % 2, 0);
});

test('an allocation made with a SHA-256 key but SHA-1 integrity keeps working with MD5-keyed requests', () => {
  const c = world().client();
  const res = c.request(Method.Allocate, [UDP], { algorithm: PasswordAlgorithm.SHA256 });
  assert.ok(isSuccess(res), `got ${errorCode(res)}`);
  const md5 = c.request(Method.Refresh, []);
  assert.ok(isSuccess(md5), `MD5-keyed refresh got ${errorCode(md5)}`);
  assert.equal(verifyIntegrity(md5, c.key()), 'ok');
  const sha = c.request(Method.Refresh, [], { algorithm: PasswordAlgorithm.SHA256 });
  assert.ok(isSuccess(sha));
  assert.equal(verifyIntegrity(sha, c.key(PasswordAlgorithm.SHA256)), 'ok');
});

test('an IPv6 peer datagram too big for a Data indication is dropped and counted, not thrown', () => {
  const w = world({ relay6: { bind: '::', external: '2001:4860::10' } });
  const c = w.client();
  assert.ok(isSuccess(c.allocate([UDP, [AttributeType.RequestedAddressFamily, { kind: 'family', family: 'IPv6' }]])));
  const p6 = peer('2001:4860:4860::8888', 5000);
  assert.ok(isSuccess(c.permit(p6)));
  c.send(p6, Buffer.from('hi'));
  const relay = w.relays[0]!.relay;
  const n = c.link.messages.length;
  w.core.handlePeerDatagram(relay, Buffer.alloc(65505), p6.address, p6.port);
  assert.equal(c.link.messages.length, n);
  assert.equal(w.core.stats.droppedOversize, 1);
  w.core.handlePeerDatagram(relay, Buffer.alloc(65504), p6.address, p6.port);
  assert.equal(c.link.messages.length, n + 1);
  assert.equal(dataOf(c.link.messages.at(-1)!).data.length, 65504);
});

test('port rules of the policy hold for Send indications and, with address filtering, for inbound data', () => {
  const rule = parsePolicyRule('reject *:25');
  assert.ok(rule.ok);
  for (const filtering of ['address-and-port', 'address'] as const) {
    const w = world({ filtering, policy: new PeerPolicy({ rules: [rule.rule] }) });
    const c = w.client();
    c.allocate();
    assert.equal(errorCode(c.permit(peer(PEER.address, 25))), 403);
    assert.ok(isSuccess(c.permit(peer(PEER.address, 80))));
    c.send(peer(PEER.address, 25), Buffer.from('MAIL FROM'));
    assert.equal(w.relays[0]!.sent.length, 0, filtering);
    assert.equal(w.core.stats.deniedPeers, 2);
    const n = c.link.messages.length;
    w.core.handlePeerDatagram(w.relays[0]!.relay, Buffer.from('220'), PEER.address, 25);
    assert.equal(c.link.messages.length, n, filtering);
    c.send(peer(PEER.address, 80), Buffer.from('GET'));
    assert.equal(w.relays[0]!.sent.length, 1);
  }
});

test('a RESERVATION-TOKEN survives an Allocate refused for another reason (486 here), and is used once after', () => {
  const w = world({ users: { [USER]: PASSWORD, bob: 'builder' }, limits: { allocationsPerUser: 1 } });
  const a = w.client();
  const res = a.allocate([UDP, [AttributeType.EvenPort, { kind: 'even-port', reserve: true }]]);
  const port = readAddressAttribute(res, AttributeType.XorRelayedAddress)!.port;
  const token = readAttribute(res, AttributeType.ReservationToken);
  assert.ok(token?.ok && token.value.kind === 'bytes');
  const tokenAttr = [AttributeType.ReservationToken, { kind: 'bytes', bytes: Buffer.from(token.value.bytes) }] as const;
  assert.equal(errorCode(w.client().allocate([UDP, tokenAttr])), 486, 'alice is at her quota');
  const b = w.client();
  b.username = 'bob';
  b.password = 'builder';
  const second = b.allocate([UDP, tokenAttr]);
  assert.ok(isSuccess(second), `got ${errorCode(second)}`);
  assert.equal(readAddressAttribute(second, AttributeType.XorRelayedAddress)!.port, port + 1);
});

test('per-request events a client can cause at will (auth-failed, peer-denied) are debug level; lifecycle events info', () => {
  const seen: [string, string][] = [];
  const w = world({ events: { event: (name, _fields, level) => seen.push([name, level ?? 'info']) } });
  const bad = w.client();
  bad.password = 'nope';
  bad.allocate();
  const c = w.client();
  c.allocate();
  c.permit(peer('10.0.0.1', 1));
  const level = (name: string): string | undefined => seen.find(([n]) => n === name)?.[1];
  assert.equal(level('auth-failed'), 'debug');
  assert.equal(level('peer-denied'), 'debug');
  assert.equal(level('allocation-created'), 'info');
});

test('DONT-FRAGMENT (Node cannot set DF): Allocate gets 420 listing it; a Send carrying it is discarded', () => {
  const w = world();
  const c = w.client();
  const res = c.allocate([UDP, [AttributeType.DontFragment, { kind: 'empty' }]]);
  assert.equal(errorCode(res), 420);
  const ua = readAttribute(res, AttributeType.UnknownAttributes);
  assert.ok(ua?.ok && ua.value.kind === 'unknown-attributes');
  assert.deepEqual(ua.value.types, [AttributeType.DontFragment]);
  assert.equal(w.core.allocationCount, 0);
  assert.ok(isSuccess(c.allocate()));
  c.permit(PEER);
  const df = new MessageBuilder(Method.Send, MessageClass.Indication)
    .add(AttributeType.XorPeerAddress, { kind: 'address', address: PEER })
    .add(AttributeType.Data, { kind: 'bytes', bytes: Buffer.from('x') })
    .add(AttributeType.DontFragment, { kind: 'empty' })
    .build();
  w.core.handleStun(c.client, df);
  assert.equal(w.relays[0]!.sent.length, 0);
  c.send(PEER, Buffer.from('y'));
  assert.equal(w.relays[0]!.sent.length, 1);
});

test('lifetimes: Allocate gets at least the default; Refresh gets what it asks for, up to the maximum', () => {
  const w = world();
  const c = w.client();
  assert.equal(readUint32(c.allocate([UDP, [AttributeType.Lifetime, { kind: 'uint32', value: 60 }]]), AttributeType.Lifetime), 600);
  assert.equal(readUint32(c.request(Method.Refresh, [[AttributeType.Lifetime, { kind: 'uint32', value: 60 }]]), AttributeType.Lifetime), 60);
  w.clock.now += 61_000;
  w.core.tick();
  assert.equal(w.core.allocationCount, 0, 'the shorter lifetime holds');
});

test('PASSWORD-ALGORITHMS without PASSWORD-ALGORITHM (or the reverse) is 400 (RFC 8489 §9.2.4)', () => {
  const c = world().client();
  c.challenge();
  const algs = [
    AttributeType.PasswordAlgorithms,
    {
      kind: 'password-algorithms',
      algorithms: [
        { algorithm: PasswordAlgorithm.SHA256, parameters: Buffer.alloc(0) },
        { algorithm: PasswordAlgorithm.MD5, parameters: Buffer.alloc(0) },
      ],
    },
  ] as const;
  const alg = [
    AttributeType.PasswordAlgorithm,
    { kind: 'password-algorithm', algorithm: { algorithm: PasswordAlgorithm.MD5, parameters: Buffer.alloc(0) } },
  ] as const;
  assert.equal(errorCode(c.raw(c.build(Method.Allocate, [UDP, algs], true))!), 400);
  assert.equal(errorCode(c.raw(c.build(Method.Allocate, [UDP, alg], true))!), 400);
  assert.ok(isSuccess(c.raw(c.build(Method.Allocate, [UDP, alg, algs], true))!));
});

test('a request with a wrong FINGERPRINT is dropped and counted as malformed', () => {
  const w = world();
  const c = w.client();
  const good = c.build(Method.Binding, [], false, undefined, { fingerprint: true });
  assert.ok(c.raw(good));
  const bad = Buffer.from(good);
  bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 1, bad.length - 1);
  const before = w.core.stats.malformed;
  assert.equal(c.raw(bad), undefined);
  assert.equal(w.core.stats.malformed, before + 1);
});

test('CreatePermission is all or nothing: a 508 for the new-peer rate installs none of the list', () => {
  const w = world({ limits: { newPeersPerSecond: 2 } });
  const c = w.client();
  c.allocate();
  const [a, b, d] = [peer('93.184.216.1', 1), peer('93.184.216.2', 1), peer('93.184.216.3', 1)];
  assert.equal(errorCode(c.permit(a, b, d)), 508);
  w.clock.now += 5_000;
  c.send(a, Buffer.from('x'));
  assert.equal(w.relays[0]!.sent.length, 0, 'no permission was left behind');
  assert.ok(isSuccess(c.permit(a, a, b)), 'a repeated address counts once');
  w.clock.now += 5_000;
  c.send(a, Buffer.from('y'));
  assert.equal(w.relays[0]!.sent.length, 1);
});
