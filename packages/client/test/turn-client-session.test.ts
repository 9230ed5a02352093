// The shim's own TURN client session (SOCKS UDP associations, UDP forwards), sans-IO: the test
// plays the TURN server with the protocol package's codec and passes the time in. No sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttributeType,
  ChannelNumber,
  ErrorCode,
  MessageBuilder,
  MessageClass,
  Method,
  decodeMessage,
  encodeChannelData,
  errorCodeValue,
  getAttribute,
  readAttribute,
  readAddressAttribute,
  readText,
  readUint32,
  verifyIntegrity,
  type StunMessage,
  type TransportAddress,
} from '@onionturn/protocol';
import {
  CHANNEL_LIFETIME_MS,
  PERMISSION_LIFETIME_MS,
  REFRESH_AHEAD_MS,
  TRANSACTION_TIMEOUT_MS,
  TurnClientSession,
  type SessionAction,
} from '../src/turn-client-session.js';
import { CRED, KEY, PEER, REALM, T0, answer, challenge, sent } from './session-fixtures.js';

const PEER2: TransportAddress = { family: 'IPv6', address: '::1', port: 7 };

const ok = (req: StunMessage, lifetime?: number): Buffer =>
  answer(req, MessageClass.SuccessResponse, (b) => (lifetime !== undefined ? b.add(AttributeType.Lifetime, { kind: 'uint32', value: lifetime }) : b));

/** A session that has its allocation (the 401 dance done). */
function allocated(now = T0): { s: TurnClientSession } {
  const s = new TurnClientSession({ credential: CRED, now });
  const [first] = sent(s.start(now));
  const [signed] = sent(s.fromUpstream(challenge(first as StunMessage), now));
  assert.deepEqual(sent(s.fromUpstream(ok(signed as StunMessage, 600), now)), []);
  assert.equal(s.allocated, true);
  return { s };
}

test('Allocate: unsigned first, the 401 brings realm and nonce, then signed with the upstream credential', () => {
  const s = new TurnClientSession({ credential: CRED, now: T0 });
  const [first] = sent(s.start(T0));
  assert.equal(first?.method, Method.Allocate);
  assert.equal(readText(first as StunMessage, AttributeType.Username), undefined);
  const [signed] = sent(s.fromUpstream(challenge(first as StunMessage), T0));
  assert.equal(signed?.method, Method.Allocate);
  assert.equal(readText(signed as StunMessage, AttributeType.Username), CRED.username);
  assert.equal(readText(signed as StunMessage, AttributeType.Nonce), 'nonce-1');
  assert.equal(verifyIntegrity(signed as StunMessage, KEY), 'ok');
  assert.equal(readUint32(signed as StunMessage, AttributeType.Lifetime), 600);
  s.fromUpstream(ok(signed as StunMessage, 600), T0);
  assert.equal(s.allocated, true);
});

test('438 stale nonce: the request goes again with the new nonce', () => {
  const { s } = allocated();
  const [perm, bind] = sent(s.send(PEER, Buffer.from('x'), T0).actions);
  assert.equal(perm?.method, Method.CreatePermission);
  const [again] = sent(s.fromUpstream(challenge(perm as StunMessage, ErrorCode.StaleNonce, 'nonce-2'), T0));
  assert.equal(again?.method, Method.CreatePermission);
  assert.equal(readText(again as StunMessage, AttributeType.Nonce), 'nonce-2');
  assert.equal(verifyIntegrity(again as StunMessage, KEY), 'ok');
  assert.equal(bind?.method, Method.ChannelBind);
});

test('a wrong upstream credential (401 to the signed request) closes with a line that says what to check', () => {
  const s = new TurnClientSession({ credential: CRED, now: T0 });
  const [first] = sent(s.start(T0));
  const [signed] = sent(s.fromUpstream(challenge(first as StunMessage), T0));
  const actions = s.fromUpstream(challenge(signed as StunMessage), T0);
  assert.equal(actions.at(-1)?.kind, 'close');
  assert.match(s.closeReason ?? '', /refused the shim's upstream credential.*--upstream-secret-file/);
});

/** The 401 a held stream got ahead (ready-challenge.ts): the server's answer to a probe of its own. */
function heldChallenge(nonce = 'held-nonce'): StunMessage {
  const probe = decodeMessage(new MessageBuilder(Method.Allocate, MessageClass.Request).build());
  assert.ok(probe.ok);
  const c = decodeMessage(challenge(probe.value, ErrorCode.Unauthorized, nonce));
  assert.ok(c.ok);
  return c.value;
}

test("a held stream's 401: the first Allocate goes signed with its realm and nonce (one round trip fewer), and allocates", () => {
  const s = new TurnClientSession({ credential: CRED, now: T0 });
  const first = sent(s.start(T0, heldChallenge()));
  assert.equal(first.length, 1);
  const [signed] = first;
  assert.equal(signed?.method, Method.Allocate);
  assert.equal(readText(signed as StunMessage, AttributeType.Username), CRED.username);
  assert.equal(readText(signed as StunMessage, AttributeType.Nonce), 'held-nonce');
  assert.equal(verifyIntegrity(signed as StunMessage, KEY), 'ok');
  assert.deepEqual(sent(s.fromUpstream(ok(signed as StunMessage, 600), T0)), []);
  assert.equal(s.allocated, true);
});

test("a held stream's 401 gone stale (438): the Allocate goes again with the new nonce; a 401 to it is a wrong credential", () => {
  const s = new TurnClientSession({ credential: CRED, now: T0 });
  const [signed] = sent(s.start(T0, heldChallenge()));
  const [again] = sent(s.fromUpstream(challenge(signed as StunMessage, ErrorCode.StaleNonce, 'nonce-2'), T0));
  assert.equal(readText(again as StunMessage, AttributeType.Nonce), 'nonce-2');
  assert.equal(verifyIntegrity(again as StunMessage, KEY), 'ok');
  s.fromUpstream(ok(again as StunMessage, 600), T0);
  assert.equal(s.allocated, true);
  const wrong = new TurnClientSession({ credential: CRED, now: T0 });
  const [w] = sent(wrong.start(T0, heldChallenge()));
  wrong.fromUpstream(challenge(w as StunMessage), T0);
  assert.match(wrong.closeReason ?? '', /refused the shim's upstream credential/);
});

test('a challenge without a nonce is no use: the first Allocate goes unsigned as before', () => {
  const s = new TurnClientSession({ credential: CRED, now: T0 });
  const probe = decodeMessage(new MessageBuilder(Method.Allocate, MessageClass.Request).build());
  assert.ok(probe.ok);
  const noNonce = decodeMessage(answer(probe.value, MessageClass.ErrorResponse, (b) => b.add(AttributeType.Realm, { kind: 'text', text: REALM }), null));
  assert.ok(noNonce.ok);
  const [first] = sent(s.start(T0, noNonce.value));
  assert.equal(readText(first as StunMessage, AttributeType.Username), undefined);
});

test("a refused allocation (486) closes with the server's code", () => {
  const s = new TurnClientSession({ credential: CRED, now: T0 });
  const [first] = sent(s.start(T0));
  const [signed] = sent(s.fromUpstream(challenge(first as StunMessage), T0));
  s.fromUpstream(
    answer(signed as StunMessage, MessageClass.ErrorResponse, (b) => b.add(AttributeType.ErrorCode, errorCodeValue(ErrorCode.AllocationQuotaReached))),
    T0,
  );
  assert.match(s.closeReason ?? '', /refused the allocation \(486/);
});

/** The peer and data of a Send indication the session wrote. */
function sendIndication(m: StunMessage | undefined): { peer: TransportAddress | undefined; data: string } {
  assert.equal(m?.method, Method.Send);
  assert.equal(m?.messageClass, MessageClass.Indication);
  const d = readAttribute(m as StunMessage, AttributeType.Data);
  return {
    peer: readAddressAttribute(m as StunMessage, AttributeType.XorPeerAddress),
    data: d?.ok && d.value.kind === 'bytes' ? d.value.bytes.toString() : '',
  };
}

test('datagrams before the allocation wait; then a permission and a channel per peer, and right behind them the datagrams as Send indications; ChannelData once bound', () => {
  const s = new TurnClientSession({ credential: CRED, now: T0 });
  const [first] = sent(s.start(T0));
  assert.equal(s.send(PEER, Buffer.from('abcde'), T0).verdict, 'queued');
  const [signed] = sent(s.fromUpstream(challenge(first as StunMessage), T0));
  const reqs = sent(s.fromUpstream(ok(signed as StunMessage, 600), T0));
  // In the stream's order: the server installs the permission before it reads the datagram.
  assert.deepEqual(
    reqs.map((m) => m.method),
    [Method.CreatePermission, Method.ChannelBind, Method.Send],
  );
  for (const r of reqs.slice(0, 2)) assert.deepEqual(readAddressAttribute(r, AttributeType.XorPeerAddress), PEER);
  assert.deepEqual(sendIndication(reqs[2]), { peer: PEER, data: 'abcde' });
  assert.equal(getAttribute(reqs[2] as StunMessage, AttributeType.MessageIntegrity), undefined, 'indications are not signed');
  // Before the channel's answer, the next datagram goes at once too.
  const early = s.send(PEER, Buffer.from('fgh'), T0);
  assert.equal(early.verdict, 'sent');
  assert.deepEqual(sendIndication(sent(early.actions)[0]), { peer: PEER, data: 'fgh' });
  s.fromUpstream(ok(reqs[0] as StunMessage), T0);
  assert.deepEqual(s.fromUpstream(ok(reqs[1] as StunMessage), T0), [], 'nothing waited for the channel');
  const now = s.send(PEER, Buffer.from('abcd'), T0);
  assert.equal(now.verdict, 'sent');
  assert.deepEqual(now.actions, [{ kind: 'send-upstream', data: encodeChannelData(ChannelNumber.Min, Buffer.from('abcd'), false), pad: 0 }]);
  const padded = s.send(PEER, Buffer.from('abcde'), T0).actions[0] as Extract<SessionAction, { kind: 'send-upstream' }>;
  assert.equal(padded.pad, 3, 'ChannelData padded to 4 bytes on the stream');
  // A second peer gets the next channel, and its first datagram goes behind its permission.
  const second = sent(s.send(PEER2, Buffer.from('y'), T0).actions);
  assert.deepEqual(
    second.map((m) => m.method),
    [Method.CreatePermission, Method.ChannelBind, Method.Send],
  );
  assert.deepEqual(readAddressAttribute(second[1] as StunMessage, AttributeType.XorPeerAddress), PEER2);
  assert.deepEqual(sendIndication(second[2]), { peer: PEER2, data: 'y' });
});

test('ChannelData and Data indications from upstream become datagrams from their peer; unknown channels are dropped and counted', () => {
  const { s } = allocated();
  const [, bind] = sent(s.send(PEER, Buffer.from('q'), T0).actions);
  s.fromUpstream(ok(bind as StunMessage), T0);
  const padded = encodeChannelData(ChannelNumber.Min, Buffer.from('answer'), true);
  assert.deepEqual(s.fromUpstream(padded, T0), [{ kind: 'deliver', peer: PEER, data: Buffer.from('answer') }]);
  const ind = new MessageBuilder(Method.Data, MessageClass.Indication)
    .add(AttributeType.XorPeerAddress, { kind: 'address', address: PEER2 })
    .add(AttributeType.Data, { kind: 'bytes', bytes: Buffer.from('via-indication') })
    .build();
  assert.deepEqual(s.fromUpstream(ind, T0), [{ kind: 'deliver', peer: PEER2, data: Buffer.from('via-indication') }]);
  assert.deepEqual(s.fromUpstream(encodeChannelData(0x4abc, Buffer.from('?'), true), T0), []);
  assert.equal(s.dropped, 1);
});

test('a success without our integrity (forged on the path) is dropped, not believed', () => {
  const s = new TurnClientSession({ credential: CRED, now: T0 });
  const [first] = sent(s.start(T0));
  const [signed] = sent(s.fromUpstream(challenge(first as StunMessage), T0));
  s.fromUpstream(
    answer(signed as StunMessage, MessageClass.SuccessResponse, () => {}, null),
    T0,
  );
  assert.equal(s.allocated, false);
  assert.equal(s.dropped, 1);
  s.fromUpstream(
    answer(signed as StunMessage, MessageClass.SuccessResponse, () => {}, Buffer.alloc(16, 1)),
    T0,
  );
  assert.equal(s.allocated, false);
  assert.equal(s.dropped, 2);
});

test('Refresh before the allocation lapses; permissions and channels refreshed before theirs', () => {
  const { s } = allocated();
  const [perm, bind] = sent(s.send(PEER, Buffer.from('q'), T0).actions);
  s.fromUpstream(ok(perm as StunMessage), T0);
  s.fromUpstream(ok(bind as StunMessage), T0);
  assert.deepEqual(sent(s.tick(T0 + 1000)), []);
  const permDue = T0 + PERMISSION_LIFETIME_MS - REFRESH_AHEAD_MS;
  assert.deepEqual(sent(s.tick(permDue - 1)), []);
  const p2 = sent(s.tick(permDue));
  assert.deepEqual(
    p2.map((m) => m.method),
    [Method.CreatePermission],
  );
  s.fromUpstream(ok(p2[0] as StunMessage), permDue);
  const perm2Due = permDue + PERMISSION_LIFETIME_MS - REFRESH_AHEAD_MS;
  const p3 = sent(s.tick(perm2Due));
  assert.deepEqual(
    p3.map((m) => m.method),
    [Method.CreatePermission],
  );
  s.fromUpstream(ok(p3[0] as StunMessage), perm2Due);
  const refreshDue = T0 + 600_000 - REFRESH_AHEAD_MS;
  const chanDue = T0 + CHANNEL_LIFETIME_MS - REFRESH_AHEAD_MS;
  assert.equal(refreshDue, chanDue);
  const due = sent(s.tick(refreshDue));
  assert.deepEqual(
    due.map((m) => m.method).sort((a, b) => a - b),
    [Method.Refresh, Method.ChannelBind],
  );
  const refresh = due.find((m) => m.method === Method.Refresh) as StunMessage;
  assert.equal(readUint32(refresh, AttributeType.Lifetime), 600);
  assert.equal(verifyIntegrity(refresh, KEY), 'ok');
  for (const m of due) s.fromUpstream(ok(m, m.method === Method.Refresh ? 600 : undefined), refreshDue);
  assert.equal(s.isClosed(), false);
  // Nothing more until the next round.
  assert.deepEqual(sent(s.tick(refreshDue + 1000)), []);
});

test("403 on a peer (the server's peer policy): that peer is dropped, said once; other peers keep working", () => {
  const { s } = allocated();
  const [perm, bind] = sent(s.send(PEER, Buffer.from('q'), T0).actions);
  const refused = s.fromUpstream(
    answer(perm as StunMessage, MessageClass.ErrorResponse, (b) => b.add(AttributeType.ErrorCode, errorCodeValue(ErrorCode.Forbidden))),
    T0,
  );
  assert.equal(refused.length, 1);
  assert.equal(refused[0]?.kind, 'warn');
  s.fromUpstream(
    answer(bind as StunMessage, MessageClass.ErrorResponse, (b) => b.add(AttributeType.ErrorCode, errorCodeValue(ErrorCode.Forbidden))),
    T0,
  );
  assert.equal(s.send(PEER, Buffer.from('again'), T0).verdict, 'dropped-refused');
  const [, , other] = sent(s.send(PEER2, Buffer.from('other'), T0).actions);
  assert.deepEqual(sendIndication(other), { peer: PEER2, data: 'other' }, "the other peer's datagram goes out");
  assert.equal(s.isClosed(), false);
});

test('an unanswered request ends the session after the timeout', () => {
  const s = new TurnClientSession({ credential: CRED, now: T0 });
  s.start(T0);
  assert.deepEqual(s.tick(T0 + TRANSACTION_TIMEOUT_MS), []);
  const a = s.tick(T0 + TRANSACTION_TIMEOUT_MS + 1);
  assert.equal(a[0]?.kind, 'close');
  assert.match(s.closeReason ?? '', /did not answer a allocate request/);
});

test('bounded: the waiting queue and the peer count have limits; oversized datagrams are refused', () => {
  const s = new TurnClientSession({ credential: CRED, now: T0, maxQueued: 2, maxPeers: 2 });
  s.start(T0);
  assert.equal(s.send(PEER, Buffer.from('1'), T0).verdict, 'queued');
  assert.equal(s.send(PEER, Buffer.from('2'), T0).verdict, 'queued');
  assert.equal(s.send(PEER, Buffer.from('3'), T0).verdict, 'dropped-queue');
  assert.equal(s.send(PEER2, Buffer.from('4'), T0).verdict, 'dropped-queue');
  assert.equal(s.send({ family: 'IPv4', address: '10.0.0.9', port: 1 }, Buffer.from('5'), T0).verdict, 'dropped-peers');
  assert.equal(s.send(PEER, Buffer.alloc(70_000), T0).verdict, 'dropped-size');
});

test('close releases the allocation (Refresh, lifetime 0, signed); nothing after', () => {
  const { s } = allocated();
  const out = s.close('control connection closed', T0 + 5);
  const [rel] = sent(out);
  assert.equal(rel?.method, Method.Refresh);
  assert.equal(readUint32(rel as StunMessage, AttributeType.Lifetime), 0);
  assert.equal(verifyIntegrity(rel as StunMessage, KEY), 'ok');
  assert.equal(out.at(-1)?.kind, 'close');
  assert.equal(s.send(PEER, Buffer.from('late'), T0 + 6).verdict, 'dropped-closed');
  assert.deepEqual(s.tick(T0 + 10_000_000), []);
});

test('garbage from upstream (not TURN framing) closes the session with a reason', () => {
  const { s } = allocated();
  const a = s.fromUpstream(Buffer.from('\xff\xfe garbage', 'latin1'), T0);
  assert.equal(a.at(-1)?.kind, 'close');
  assert.match(s.closeReason ?? '', /not TURN/);
});
