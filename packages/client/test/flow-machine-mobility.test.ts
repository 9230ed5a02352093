// TURN mobility in the flow machine (local-credential mode), sans-IO with passed-in time: the
// upstream Allocate asks for a ticket the app never sees, a lost Tor stream becomes a redial
// (not a close), the gap drops what the app sends, the take-over Refresh carries the ticket, and
// a server that will not move the allocation closes the flow at once. The held stream's 401 also
// signs a flow's first Allocate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttributeType,
  ErrorCode,
  MessageBuilder,
  MessageClass,
  Method,
  decodeMessage,
  encodeChannelData,
  errorCodeValue,
  getAttribute,
  longTermKey,
  readText,
  readUint32,
  verifyIntegrity,
  type StunMessage,
} from '@onionturn/protocol';
import { AppAuthenticator } from '../src/app-auth.js';
import { CredentialResigner } from '../src/credential-resigner.js';
import { FlowMachine, type FlowAction } from '../src/flow-machine.js';
import { MOVE_ANSWER_TIMEOUT_MS } from '../src/mobility-auth.js';
import { ShimStats } from '../src/stats.js';

const T0 = 1_000_000;
const LOCAL = { username: 'app', password: 'app-pass', realm: 'onionturn.local' };
const UP = { username: '1900000000:abc', password: 'up-pass', expiresAt: T0 + 86_400_000 };
const UP_REALM = 'upstream.realm';
const UP_KEY = longTermKey(UP.username, UP_REALM, UP.password);
const TICKET = Buffer.from('ticket-from-the-server-1');

const kinds = (a: readonly FlowAction[]): string[] => a.map((x) => x.kind);

function upstreamSent(actions: readonly FlowAction[]): StunMessage[] {
  const out: StunMessage[] = [];
  for (const a of actions) {
    if (a.kind !== 'send-upstream') continue;
    const d = decodeMessage(a.data);
    assert.ok(d.ok);
    out.push(d.value);
  }
  return out;
}

function toApp(actions: readonly FlowAction[]): StunMessage[] {
  const out: StunMessage[] = [];
  for (const a of actions) {
    if (a.kind !== 'send-app') continue;
    const d = decodeMessage(a.data);
    if (d.ok) out.push(d.value);
  }
  return out;
}

function reply(req: StunMessage, cls: MessageClass, fill: (b: MessageBuilder) => void, signed = true): Buffer {
  const b = new MessageBuilder(req.method, cls, Buffer.from(req.transactionId));
  fill(b);
  return b.build(signed ? { integrityKey: UP_KEY } : {});
}
const challenge = (req: StunMessage, code: number, nonce: string): Buffer =>
  reply(
    req,
    MessageClass.ErrorResponse,
    (b) =>
      b
        .add(AttributeType.ErrorCode, errorCodeValue(code))
        .add(AttributeType.Realm, { kind: 'text', text: UP_REALM })
        .add(AttributeType.Nonce, { kind: 'text', text: nonce }),
    false,
  );
const success = (req: StunMessage, ticket?: Buffer): Buffer =>
  reply(req, MessageClass.SuccessResponse, (b) => {
    b.add(AttributeType.Lifetime, { kind: 'uint32', value: 600 });
    if (ticket) b.add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: ticket });
  });

/** The server's 401 that a held stream brought (ready-challenge.ts). */
function heldChallenge(): StunMessage {
  const held = decodeMessage(
    new MessageBuilder(Method.Allocate, MessageClass.ErrorResponse)
      .add(AttributeType.ErrorCode, errorCodeValue(ErrorCode.Unauthorized))
      .add(AttributeType.Realm, { kind: 'text', text: UP_REALM })
      .add(AttributeType.Nonce, { kind: 'text', text: 'nonce-of-the-held-stream' })
      .build(),
  );
  assert.ok(held.ok);
  return held.value;
}

/** A UDP flow in local mode holding an upstream allocation (with or without a ticket). */
function allocated(ticket: Buffer | null = TICKET): { m: FlowMachine; stats: ShimStats } {
  const stats = new ShimStats();
  const auth = new AppAuthenticator(LOCAL);
  const resigner = new CredentialResigner({ auth, app: { family: 'IPv4', address: '127.0.0.1', port: 5000 } });
  const m = new FlowMachine({ kind: 'udp', now: T0, stats, resigner });
  const bare = new MessageBuilder(Method.Allocate, MessageClass.Request)
    .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
    .build();
  const [c] = toApp(m.fromAppDatagram(bare, bare.length, T0));
  const nonce = readText(c as StunMessage, AttributeType.Nonce) as string;
  const signed = new MessageBuilder(Method.Allocate, MessageClass.Request)
    .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
    .add(AttributeType.Username, { kind: 'text', text: LOCAL.username })
    .add(AttributeType.Realm, { kind: 'text', text: LOCAL.realm })
    .add(AttributeType.Nonce, { kind: 'text', text: nonce })
    .build({ integrityKey: longTermKey(LOCAL.username, LOCAL.realm, LOCAL.password), fingerprint: true });
  assert.deepEqual(kinds(m.fromAppDatagram(signed, signed.length, T0)), ['dial']);
  m.turnGranted();
  const [first] = upstreamSent(m.dialed({ kind: 'open' }));
  assert.ok(first);
  assert.equal(getAttribute(first, AttributeType.MobilityTicket)?.value.length, 0, 'the upstream Allocate asks for a ticket');
  assert.deepEqual(m.fromUpstream(challenge(first, ErrorCode.Unauthorized, 'up-1'), T0), []);
  const [retry] = upstreamSent(m.credential({ ok: true, value: UP }, T0));
  assert.ok(retry && getAttribute(retry, AttributeType.MobilityTicket));
  const [answer] = toApp(m.fromUpstream(success(retry, ticket ?? undefined), T0));
  assert.equal(answer?.messageClass, MessageClass.SuccessResponse);
  assert.equal(getAttribute(answer as StunMessage, AttributeType.MobilityTicket), undefined, 'the app did not ask: the ticket is the shim’s');
  return { m, stats };
}

test('local mode: a lost stream is replaced; the gap drops; the take-over Refresh carries the ticket; traffic flows again', () => {
  const { m, stats } = allocated();
  const lost = m.upstreamEnded();
  assert.deepEqual(kinds(lost), ['warn', 'redial']);
  assert.equal(m.isClosed(), false);
  assert.equal(stats.streamsMoved, 1);

  const cd = encodeChannelData(0x4001, Buffer.from('media'), false);
  assert.deepEqual(m.fromAppDatagram(cd, cd.length, T0 + 10), []);
  assert.equal(stats.gapDropped, 1);

  const [move] = upstreamSent(m.redialed({ kind: 'open' }, T0 + 800));
  assert.equal(move?.method, Method.Refresh);
  assert.deepEqual(getAttribute(move as StunMessage, AttributeType.MobilityTicket)?.value, TICKET);
  assert.equal(readText(move as StunMessage, AttributeType.Username), UP.username);
  assert.equal(verifyIntegrity(move as StunMessage, UP_KEY), 'ok');
  // Still in the gap until the answer.
  assert.deepEqual(m.fromAppDatagram(cd, cd.length, T0 + 810), []);
  const [again] = upstreamSent(m.fromUpstream(challenge(move as StunMessage, ErrorCode.StaleNonce, 'up-2'), T0 + 900));
  assert.equal(readText(again as StunMessage, AttributeType.Nonce), 'up-2');
  assert.deepEqual(getAttribute(again as StunMessage, AttributeType.MobilityTicket)?.value, TICKET);
  const done = m.fromUpstream(success(again as StunMessage, Buffer.from('ticket-2')), T0 + 1000);
  assert.deepEqual(kinds(done), ['moved'], 'the take-over answer never reaches the app');
  assert.deepEqual(kinds(m.fromAppDatagram(cd, cd.length, T0 + 1001)), ['forward-upstream']);
  assert.equal(stats.gapDropped, 2);

  // A second loss takes it over with the newest ticket.
  m.upstreamFailed('ECONNRESET');
  const [move2] = upstreamSent(m.redialed({ kind: 'open' }, T0 + 2000));
  assert.deepEqual(getAttribute(move2 as StunMessage, AttributeType.MobilityTicket)?.value, Buffer.from('ticket-2'));
});

test("a take-over on a held stream that brought the server's 401: the Refresh is signed with that stream's nonce, no 438 first", () => {
  const { m } = allocated();
  m.upstreamEnded();
  const held = heldChallenge();
  const [move] = upstreamSent(m.redialed({ kind: 'open', challenge: held }, T0 + 800));
  assert.equal(move?.method, Method.Refresh);
  assert.equal(readText(move as StunMessage, AttributeType.Nonce), 'nonce-of-the-held-stream');
  assert.equal(verifyIntegrity(move as StunMessage, UP_KEY), 'ok');
  assert.deepEqual(kinds(m.fromUpstream(success(move as StunMessage, Buffer.from('ticket-2')), T0 + 1000)), ['moved'], 'taken over in one round trip');
});

test("local mode: a first stream that brought the server's 401 (a held stream) carries the Allocate signed with it, not unsigned: no 401 round trip over Tor", () => {
  const held = heldChallenge();
  // The upstream credential comes before the stream opens, or after it (fetched alongside the dial).
  for (const kind of ['udp', 'tcp'] as const) {
    for (const credentialFirst of [true, false]) {
      const what = `${kind}, credential ${credentialFirst ? 'before' : 'after'} the stream`;
      const resigner = new CredentialResigner({ auth: new AppAuthenticator(LOCAL), app: { family: 'IPv4', address: '127.0.0.1', port: 5000 } });
      const m = new FlowMachine({ kind, now: T0, stats: new ShimStats(), resigner });
      const fromApp = (b: Buffer): readonly FlowAction[] => (kind === 'udp' ? m.fromAppDatagram(b, b.length, T0) : m.fromAppBytes(b, T0));
      const bare = new MessageBuilder(Method.Allocate, MessageClass.Request)
        .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
        .build();
      const [c] = toApp(fromApp(bare));
      const signed = new MessageBuilder(Method.Allocate, MessageClass.Request)
        .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
        .add(AttributeType.Username, { kind: 'text', text: LOCAL.username })
        .add(AttributeType.Realm, { kind: 'text', text: LOCAL.realm })
        .add(AttributeType.Nonce, { kind: 'text', text: readText(c as StunMessage, AttributeType.Nonce) as string })
        .build({ integrityKey: longTermKey(LOCAL.username, LOCAL.realm, LOCAL.password), fingerprint: true });
      assert.ok(kinds(fromApp(signed)).includes('dial'), what);
      m.turnGranted();
      let sent: StunMessage[];
      if (credentialFirst) {
        assert.deepEqual(upstreamSent(m.credential({ ok: true, value: UP }, T0)), [], what);
        sent = upstreamSent(m.dialed({ kind: 'open', challenge: held }));
      } else {
        assert.deepEqual(upstreamSent(m.dialed({ kind: 'open', challenge: held })), [], `${what}: nothing unsigned goes upstream`);
        sent = upstreamSent(m.credential({ ok: true, value: UP }, T0));
      }
      assert.equal(sent.length, 1, what);
      const first = sent[0] as StunMessage;
      assert.equal(first.method, Method.Allocate, what);
      assert.equal(readText(first, AttributeType.Nonce), 'nonce-of-the-held-stream', what);
      assert.equal(readText(first, AttributeType.Username), UP.username, what);
      assert.equal(verifyIntegrity(first, UP_KEY), 'ok', what);
      assert.equal(getAttribute(first, AttributeType.MobilityTicket)?.value.length, 0, `${what}: it asks for a ticket`);
      const [answer] = toApp(m.fromUpstream(success(first, TICKET), T0 + 300));
      assert.equal(answer?.messageClass, MessageClass.SuccessResponse, `${what}: allocated in one round trip`);
      assert.equal(resigner.pendingCount, 0, what);
    }
  }
});

test('mobility refused (the server restarted: 400 or 437): the flow closes at once, saying so', () => {
  for (const code of [ErrorCode.BadRequest, ErrorCode.AllocationMismatch]) {
    const { m } = allocated();
    m.upstreamEnded();
    const [move] = upstreamSent(m.redialed({ kind: 'open' }, T0 + 1));
    const out = m.fromUpstream(
      reply(move as StunMessage, MessageClass.ErrorResponse, (b) => b.add(AttributeType.ErrorCode, errorCodeValue(code))),
      T0 + 2,
    );
    const last = out.at(-1);
    assert.equal(last?.kind, 'close');
    assert.match(last?.kind === 'close' ? last.reason : '', /^mobility failed: the TURN server did not take the allocation over \((400|437)/);
  }
});

test("the take-over's new stream dies before the answer (the held stream went down with the lost one): one more, dialed fresh, takes it over", () => {
  const { m, stats } = allocated();
  m.upstreamEnded();
  m.redialed({ kind: 'open' }, T0 + 1);
  const again = m.upstreamFailed('ECONNRESET');
  assert.deepEqual(kinds(again), ['warn', 'redial'], 'not closed: another circuit');
  assert.match(again[0]?.kind === 'warn' ? again[0].reason : '', /new stream is gone too/);
  assert.equal(m.isClosed(), false);
  assert.equal(stats.streamsMoved, 1, 'one lost stream, one move');
  const [move] = upstreamSent(m.redialed({ kind: 'open' }, T0 + 800));
  assert.equal(move?.method, Method.Refresh);
  assert.deepEqual(getAttribute(move as StunMessage, AttributeType.MobilityTicket)?.value, TICKET);
  assert.deepEqual(kinds(m.fromUpstream(success(move as StunMessage, Buffer.from('ticket-2')), T0 + 1000)), ['moved']);
  // The next loss starts afresh: two tries again.
  m.upstreamEnded();
  m.redialed({ kind: 'open' }, T0 + 2000);
  assert.deepEqual(kinds(m.upstreamEnded()), ['warn', 'redial']);
});

test('a take-over Refresh unanswered for MOVE_ANSWER_TIMEOUT_MS (its stream stalled too): another new stream; a second unanswered one closes the flow', () => {
  const { m, stats } = allocated();
  m.upstreamStalled(4000);
  assert.deepEqual(kinds(m.tick(T0 + 60_000)), [], 'no deadline while the new stream is being dialed');
  const sent = T0 + 61_000;
  const [move] = upstreamSent(m.redialed({ kind: 'open' }, sent));
  assert.equal(move?.method, Method.Refresh);
  assert.deepEqual(kinds(m.tick(sent + MOVE_ANSWER_TIMEOUT_MS - 1)), [], 'waited for until the deadline');
  const next = m.tick(sent + MOVE_ANSWER_TIMEOUT_MS);
  assert.deepEqual(kinds(next), ['warn', 'redial']);
  assert.match((next[0] as { reason: string }).reason, /take-over Refresh went unanswered for 5 s: the take-over's new stream is gone too: another circuit/);
  assert.equal(stats.streamsMoved, 1, 'still one move');
  // The second stream answers: moved, and the deadline is off.
  const sent2 = sent + 6000;
  const [move2] = upstreamSent(m.redialed({ kind: 'open' }, sent2));
  assert.deepEqual(getAttribute(move2 as StunMessage, AttributeType.MobilityTicket)?.value, TICKET);
  assert.deepEqual(kinds(m.fromUpstream(success(move2 as StunMessage, Buffer.from('ticket-2')), sent2 + 900)), ['moved']);
  assert.deepEqual(kinds(m.tick(sent2 + MOVE_ANSWER_TIMEOUT_MS + 1)), []);

  // A stream that answers (a 438 to the Refresh signed with the lost stream's nonce) is not
  // stalled: the resent Refresh gets its own deadline.
  const slow = allocated();
  slow.m.upstreamEnded();
  const [first] = upstreamSent(slow.m.redialed({ kind: 'open' }, T0 + 100));
  const [resent] = upstreamSent(slow.m.fromUpstream(challenge(first as StunMessage, ErrorCode.StaleNonce, 'up-2'), T0 + 3000));
  assert.equal(readText(resent as StunMessage, AttributeType.Nonce), 'up-2');
  assert.deepEqual(kinds(slow.m.tick(T0 + 100 + MOVE_ANSWER_TIMEOUT_MS)), [], 'the first deadline is off');
  assert.deepEqual(kinds(slow.m.fromUpstream(success(resent as StunMessage, Buffer.from('ticket-2')), T0 + 7000)), ['moved']);

  // Two unanswered in one take-over: the flow closes, saying why.
  const b = allocated();
  b.m.upstreamEnded();
  b.m.redialed({ kind: 'open' }, T0 + 1);
  b.m.tick(T0 + 1 + MOVE_ANSWER_TIMEOUT_MS);
  b.m.redialed({ kind: 'open' }, T0 + 7000);
  const closed = b.m.tick(T0 + 7000 + MOVE_ANSWER_TIMEOUT_MS);
  assert.equal(closed.at(-1)?.kind, 'close');
  assert.match((closed.at(-1) as { reason: string }).reason, /take-over Refresh went unanswered/);
  assert.equal(b.m.isClosed(), true);
});

test('no new stream, a third loss during one take-over, or no ticket at all: the flow closes', () => {
  const a = allocated();
  a.m.upstreamEnded();
  assert.equal(a.m.redialed({ kind: 'failed', reason: 'SOCKS refused' }, T0 + 1).at(-1)?.kind, 'close');

  const b = allocated();
  b.m.upstreamEnded();
  b.m.redialed({ kind: 'open' }, T0 + 1);
  b.m.upstreamEnded();
  b.m.redialed({ kind: 'open' }, T0 + 2);
  assert.equal(b.m.upstreamEnded().at(-1)?.kind, 'close');

  const c = allocated(null);
  assert.deepEqual(kinds(c.m.upstreamEnded()), ['close']);
});

test('a stalled stream (nothing acknowledged while data waited): taken over on a new stream where mobility can; else left alone, not closed', () => {
  const { m, stats } = allocated();
  const stalled = m.upstreamStalled(4200);
  assert.deepEqual(kinds(stalled), ['warn', 'redial']);
  assert.match((stalled[0] as { reason: string }).reason, /stalled: nothing acknowledged for 4\.2 s/);
  assert.equal(stats.streamsMoved, 1);
  assert.equal(stats.stalledStreamsMoved, 1);
  assert.deepEqual(m.upstreamStalled(4300), [], 'one take-over at a time');
  const [move] = upstreamSent(m.redialed({ kind: 'open' }, T0 + 500));
  assert.deepEqual(getAttribute(move as StunMessage, AttributeType.MobilityTicket)?.value, TICKET);

  // No ticket (the server gave none): a stall may still end, and the flow is not closed for it.
  const plain = allocated(null);
  assert.deepEqual(plain.m.upstreamStalled(10_000), []);
  assert.equal(plain.m.isClosed(), false);
  assert.equal(plain.stats.stalledStreamsMoved, 0);
});

test('an upstream that refuses mobility (405) gets the Allocate again without it', () => {
  const auth = new AppAuthenticator(LOCAL);
  const r = new CredentialResigner({ auth, app: { family: 'IPv4', address: '127.0.0.1', port: 5000 } });
  const bare = new MessageBuilder(Method.Allocate, MessageClass.Request)
    .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
    .build();
  const c = r.fromApp(bare, T0)[0];
  assert.ok(c?.kind === 'to-app');
  const cm = decodeMessage(c.data);
  assert.ok(cm.ok);
  const nonce = readText(cm.value, AttributeType.Nonce);
  const signed = new MessageBuilder(Method.Allocate, MessageClass.Request)
    .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
    .add(AttributeType.Username, { kind: 'text', text: LOCAL.username })
    .add(AttributeType.Realm, { kind: 'text', text: LOCAL.realm })
    .add(AttributeType.Nonce, { kind: 'text', text: nonce as string })
    .build({ integrityKey: longTermKey(LOCAL.username, LOCAL.realm, LOCAL.password) });
  r.setUpstreamCredential(UP, T0);
  const first = r.fromApp(signed, T0)[0];
  const f = decodeMessage((first as { data: Buffer }).data);
  assert.ok(f.ok);
  const retry = r.fromUpstream(challenge(f.value, ErrorCode.Unauthorized, 'up-1'), T0)[0];
  const s = decodeMessage((retry as { data: Buffer }).data);
  assert.ok(s.ok && getAttribute(s.value, AttributeType.MobilityTicket));
  const again = r.fromUpstream(
    reply(s.value, MessageClass.ErrorResponse, (b) => b.add(AttributeType.ErrorCode, errorCodeValue(ErrorCode.MobilityForbidden))),
    T0,
  )[0];
  const g = decodeMessage((again as { data: Buffer }).data);
  assert.ok(g.ok);
  assert.equal(g.value.method, Method.Allocate);
  assert.equal(getAttribute(g.value, AttributeType.MobilityTicket), undefined);
  r.fromUpstream(success(g.value), T0);
  assert.equal(r.movable, false);
});

test('a mobile flow that ends with its stream alive releases the allocation (Refresh 0); one whose stream died does not write', () => {
  const { m } = allocated();
  const out = m.appEnded();
  assert.deepEqual(kinds(out), ['send-upstream', 'close']);
  const [release] = upstreamSent(out);
  assert.equal(release?.method, Method.Refresh);
  assert.equal(readUint32(release as StunMessage, AttributeType.Lifetime), 0);
  assert.equal(verifyIntegrity(release as StunMessage, UP_KEY), 'ok');

  const plain = allocated(null);
  assert.deepEqual(kinds(plain.m.appEnded()), ['close'], 'no ticket: the server frees it with the connection');

  const lost = allocated();
  lost.m.upstreamEnded();
  assert.deepEqual(kinds(lost.m.redialed({ kind: 'failed', reason: 'x' }, T0 + 1)), ['close']);
});
