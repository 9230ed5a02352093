// TURN mobility (RFC 8016) in the shim's own TURN client session, sans-IO with passed-in time:
// the ticket asked for at Allocate, the gap after a lost stream (dropped, not queued), the
// take-over Refresh on the new stream, and what happens when the server will not move it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttributeType,
  ErrorCode,
  MessageBuilder,
  MessageClass,
  Method,
  decodeChannelData,
  decodeMessage,
  encodeChannelData,
  errorCodeValue,
  getAttribute,
  readAttribute,
  readText,
  verifyIntegrity,
  type StunMessage,
} from '@onionturn/protocol';
import { MOVE_ANSWER_TIMEOUT_MS } from '../src/mobility-auth.js';
import { TRANSACTION_TIMEOUT_MS, TurnClientSession } from '../src/turn-client-session.js';
import { CRED, KEY, PEER, T0, answer, challenge, sent } from './session-fixtures.js';

const TICKET = Buffer.from('opaque-ticket-1');

const failure = (req: StunMessage, code: number): Buffer =>
  answer(req, MessageClass.ErrorResponse, (b) => b.add(AttributeType.ErrorCode, errorCodeValue(code)));
const ok = (req: StunMessage, ticket?: Buffer): Buffer =>
  answer(req, MessageClass.SuccessResponse, (b) => {
    b.add(AttributeType.Lifetime, { kind: 'uint32', value: 600 });
    if (ticket) b.add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: ticket });
  });

/** A session with its allocation, a ticket and a bound channel to PEER. */
function calling(now = T0): { s: TurnClientSession; channel: number } {
  const s = new TurnClientSession({ credential: CRED, now });
  const [first] = sent(s.start(now));
  const [signed] = sent(s.fromUpstream(challenge(first as StunMessage), now));
  s.fromUpstream(ok(signed as StunMessage, TICKET), now);
  const [perm, bind, data] = sent(s.send(PEER, Buffer.from('first'), now).actions);
  assert.equal(data?.method, Method.Send, 'the first datagram goes right behind its permission');
  s.fromUpstream(ok(perm as StunMessage), now);
  assert.deepEqual(s.fromUpstream(ok(bind as StunMessage), now), []);
  const channel = readAttribute(bind as StunMessage, AttributeType.ChannelNumber);
  assert.ok(channel?.ok && channel.value.kind === 'channel-number');
  return { s, channel: channel.value.channel };
}

test('the Allocate asks for a MOBILITY-TICKET (empty); the answer makes the session movable', () => {
  const s = new TurnClientSession({ credential: CRED, now: T0 });
  const [first] = sent(s.start(T0));
  assert.equal(getAttribute(first as StunMessage, AttributeType.MobilityTicket)?.value.length, 0);
  const [signed] = sent(s.fromUpstream(challenge(first as StunMessage), T0));
  assert.ok(getAttribute(signed as StunMessage, AttributeType.MobilityTicket));
  assert.equal(s.movable, false);
  s.fromUpstream(ok(signed as StunMessage, TICKET), T0);
  assert.equal(s.movable, true);
});

test('a server without mobility (405) gets the Allocate again without the ticket; the session is not movable', () => {
  const s = new TurnClientSession({ credential: CRED, now: T0 });
  const [first] = sent(s.start(T0));
  const [signed] = sent(s.fromUpstream(challenge(first as StunMessage), T0));
  const [again] = sent(s.fromUpstream(failure(signed as StunMessage, ErrorCode.MobilityForbidden), T0));
  assert.equal(again?.method, Method.Allocate);
  assert.equal(getAttribute(again as StunMessage, AttributeType.MobilityTicket), undefined);
  s.fromUpstream(ok(again as StunMessage), T0);
  assert.equal(s.allocated, true);
  assert.equal(s.movable, false);
});

test('stream lost: the gap drops datagrams (none queued); the take-over Refresh carries the ticket; the channel works again at once', () => {
  const { s, channel } = calling();
  const t1 = T0 + 10_000;
  assert.deepEqual(s.detach(t1), []);
  const gap = s.send(PEER, Buffer.from('in the gap'), t1 + 5);
  assert.equal(gap.verdict, 'dropped-gap');
  assert.deepEqual(gap.actions, []);
  // Nothing is sent while there is no stream, refreshes included.
  assert.deepEqual(s.tick(t1 + 600_000), []);

  const t2 = t1 + 1_500;
  const [move] = sent(s.reattach(t2));
  assert.equal(move?.method, Method.Refresh);
  assert.deepEqual(getAttribute(move as StunMessage, AttributeType.MobilityTicket)?.value, TICKET);
  // The new connection's nonce differs (438), the Refresh goes again with it, ticket and all.
  const [retry] = sent(s.fromUpstream(challenge(move as StunMessage, ErrorCode.StaleNonce, 'nonce-2'), t2));
  assert.deepEqual(getAttribute(retry as StunMessage, AttributeType.MobilityTicket)?.value, TICKET);
  assert.equal(s.send(PEER, Buffer.from('still waiting'), t2).verdict, 'dropped-gap');
  const done = s.fromUpstream(ok(retry as StunMessage, Buffer.from('opaque-ticket-2')), t2 + 300);
  assert.ok(done.some((a) => a.kind === 'moved'));
  assert.equal(s.detached, false);
  // The same channel, no new ChannelBind: the server kept it.
  const after = s.send(PEER, Buffer.from('again'), t2 + 301);
  assert.equal(after.verdict, 'sent');
  const frame = after.actions[0];
  assert.ok(frame?.kind === 'send-upstream');
  const d = decodeChannelData(frame.data);
  assert.ok(d.ok);
  assert.equal(d.value.channel, channel);
  // The peer's data reaches the app on the new stream.
  const back = s.fromUpstream(encodeChannelData(channel, Buffer.from('pong'), true), t2 + 302);
  assert.deepEqual(back, [{ kind: 'deliver', peer: PEER, data: Buffer.from('pong') }]);
  // A second loss uses the newest ticket.
  s.detach(t2 + 1000);
  const [move2] = sent(s.reattach(t2 + 2000));
  assert.deepEqual(getAttribute(move2 as StunMessage, AttributeType.MobilityTicket)?.value, Buffer.from('opaque-ticket-2'));
});

test('mobility refused (the server restarted: 400/437): the session closes at once saying so', () => {
  for (const code of [ErrorCode.BadRequest, ErrorCode.AllocationMismatch]) {
    const { s } = calling();
    s.detach(T0 + 1);
    const [move] = sent(s.reattach(T0 + 2));
    const out = s.fromUpstream(failure(move as StunMessage, code), T0 + 3);
    assert.equal(out.at(-1)?.kind, 'close');
    assert.match(s.closeReason ?? '', /mobility failed.*restarted/);
  }
});

test('a take-over Refresh unanswered for MOVE_ANSWER_TIMEOUT_MS (its stream stalled too): the shell is told to give that stream up; the session stays', () => {
  const { s } = calling();
  s.detach(T0 + 1);
  sent(s.reattach(T0 + 2));
  assert.deepEqual(s.tick(T0 + 1 + MOVE_ANSWER_TIMEOUT_MS), []);
  assert.deepEqual(
    s.tick(T0 + 2 + MOVE_ANSWER_TIMEOUT_MS).map((a) => a.kind),
    ['move-unanswered'],
  );
  assert.equal(s.isClosed(), false);
  assert.deepEqual(s.tick(T0 + 3 + MOVE_ANSWER_TIMEOUT_MS), [], 'said once: the Refresh is forgotten');
  // The shell detaches and takes another stream, whose Refresh is answered.
  s.detach(T0 + 6000);
  const [move] = sent(s.reattach(T0 + 7000));
  assert.ok(s.fromUpstream(ok(move as StunMessage, TICKET), T0 + 7500).some((a) => a.kind === 'moved'));
});

test('any other request unanswered ends the session after the transaction timeout', () => {
  const { s } = calling();
  const [refresh] = sent(s.tick(T0 + 600_000));
  assert.equal(refresh?.method, Method.Refresh);
  assert.deepEqual(s.tick(T0 + 600_000 + TRANSACTION_TIMEOUT_MS), []);
  assert.equal(s.tick(T0 + 600_001 + TRANSACTION_TIMEOUT_MS).at(-1)?.kind, 'close');
});

test('a half-read frame of the lost stream does not spoil the new one', () => {
  const { s, channel } = calling();
  const whole = encodeChannelData(channel, Buffer.from('cut'), true);
  s.fromUpstream(whole.subarray(0, 5), T0 + 1);
  s.detach(T0 + 2);
  const [move] = sent(s.reattach(T0 + 3));
  const done = s.fromUpstream(ok(move as StunMessage, TICKET), T0 + 4);
  assert.ok(done.some((a) => a.kind === 'moved'));
});

test("a take-over on a held stream: the Refresh goes signed with that stream's nonce at once (no 438 first)", () => {
  const { s } = calling();
  s.detach(T0 + 1);
  const probe = decodeMessage(new MessageBuilder(Method.Allocate, MessageClass.Request).build());
  assert.ok(probe.ok);
  const held = decodeMessage(challenge(probe.value, ErrorCode.Unauthorized, 'held-nonce'));
  assert.ok(held.ok);
  const [move] = sent(s.reattach(T0 + 2, held.value));
  assert.equal(readText(move as StunMessage, AttributeType.Nonce), 'held-nonce');
  assert.equal(verifyIntegrity(move as StunMessage, KEY), 'ok');
  assert.deepEqual(getAttribute(move as StunMessage, AttributeType.MobilityTicket)?.value, TICKET);
  assert.ok(s.fromUpstream(ok(move as StunMessage, TICKET), T0 + 3).some((a) => a.kind === 'moved'));
});

test("the take-over's new stream lost too: detached again, its Refresh is forgotten (no timeout for it), the next stream's takes the allocation over", () => {
  const { s } = calling();
  s.detach(T0 + 1);
  sent(s.reattach(T0 + 2));
  // That stream died before the answer: the shell detaches again and opens another.
  assert.deepEqual(s.detach(T0 + 500), []);
  const [move] = sent(s.reattach(T0 + 1000));
  assert.deepEqual(getAttribute(move as StunMessage, AttributeType.MobilityTicket)?.value, TICKET);
  assert.deepEqual(s.tick(T0 + 2 + MOVE_ANSWER_TIMEOUT_MS), [], "the first stream's Refresh is not waited for");
  assert.ok(s.fromUpstream(ok(move as StunMessage, TICKET), T0 + 3 + MOVE_ANSWER_TIMEOUT_MS).some((a) => a.kind === 'moved'));
  assert.equal(s.isClosed(), false);
});
