// The shim's flow machine without sockets or sleeps: the test plays the app, the flow table and
// the upstream server, and checks the actions; time is a number it passes in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttributeType,
  MessageBuilder,
  MessageClass,
  Method,
  decodeMessage,
  encodeChannelData,
  longTermKey,
  readAttribute,
  readText,
} from '@onionturn/protocol';
import { AppAuthenticator } from '../src/app-auth.js';
import { CredentialResigner } from '../src/credential-resigner.js';
import { FIRST_REQUEST_TIMEOUT_MS, FlowMachine, type FlowAction, type FlowKind } from '../src/flow-machine.js';
import { DEFAULT_LIFETIME_S, IDLE_GRACE_S } from '../src/flow-state.js';
import { ShimStats } from '../src/stats.js';

const T0 = 1_700_000_000_000;

function machine(kind: FlowKind, opts: { resigner?: CredentialResigner; maxDatagrams?: number } = {}): { m: FlowMachine; stats: ShimStats } {
  const stats = new ShimStats();
  const m = new FlowMachine({ kind, now: T0, stats, queueLimits: { maxDatagrams: opts.maxDatagrams ?? 64, maxBytes: 256 * 1024 }, resigner: opts.resigner });
  return { m, stats };
}

/** The actions as plain values (the relay-path array is reused, so copy it at once). */
function plain(actions: readonly FlowAction[]): unknown[] {
  return actions.map((a) => ('data' in a ? { ...a, data: a.data.toString('hex') } : { ...a }));
}

function kinds(actions: readonly FlowAction[]): string[] {
  return actions.map((a) => a.kind);
}

const allocate = (): Buffer =>
  new MessageBuilder(Method.Allocate, MessageClass.Request).add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }).build();
const success = (method: number, lifetime: number): Buffer =>
  new MessageBuilder(method, MessageClass.SuccessResponse).add(AttributeType.Lifetime, { kind: 'uint32', value: lifetime }).build();
const hex = (b: Buffer): string => b.toString('hex');

test('UDP pass-through: dials at once, queues (trimmed) while dialing, flushes in order when open, then forwards', () => {
  const { m } = machine('udp');
  assert.deepEqual(kinds(m.start()), ['dial']);
  const req = allocate();
  const unpadded = encodeChannelData(0x4001, Buffer.from('abcde'), false);
  const padded = encodeChannelData(0x4001, Buffer.from('abcde'), true);
  assert.deepEqual(kinds(m.fromAppDatagram(req, req.length, T0)), []);
  assert.deepEqual(kinds(m.fromAppDatagram(padded, 9, T0)), []);
  assert.equal(m.state.queued, 2);
  assert.deepEqual(plain(m.dialed({ kind: 'open' })), [
    { kind: 'send-upstream', data: hex(req), pad: 0 },
    { kind: 'send-upstream', data: hex(unpadded), pad: 3 },
  ]);
  assert.equal(m.phase, 'open');
  assert.deepEqual(kinds(m.fromAppDatagram(unpadded, 9, T0 + 1)), ['forward-upstream']);
  assert.equal(m.state.lastActivity, T0 + 1);
});

test('UDP: upstream frames become datagrams (padding stripped), across and within chunks', () => {
  const { m } = machine('udp');
  m.start();
  m.dialed({ kind: 'open' });
  const a = encodeChannelData(0x4001, Buffer.from('abcde'), true);
  const b = encodeChannelData(0x4002, Buffer.from('xy'), true);
  const stream = Buffer.concat([a, b]);
  // TCP pads ChannelData: a frame is whole with its padding, which the datagram goes without.
  assert.deepEqual(plain(m.fromUpstream(stream.subarray(0, 10), T0)), []);
  assert.deepEqual(plain(m.fromUpstream(stream.subarray(10, 14), T0)), [{ kind: 'send-app', data: hex(a.subarray(0, 9)), pad: 0 }]);
  assert.deepEqual(plain(m.fromUpstream(stream.subarray(14), T0)), [{ kind: 'send-app', data: hex(b.subarray(0, 6)), pad: 0 }]);
  const both = m.fromUpstream(stream, T0);
  assert.deepEqual(plain(both), [
    { kind: 'send-app', data: hex(a.subarray(0, 9)), pad: 0 },
    { kind: 'send-app', data: hex(b.subarray(0, 6)), pad: 0 },
  ]);
});

test('UDP: the connect queue is bounded and counts what it drops', () => {
  const { m, stats } = machine('udp', { maxDatagrams: 2 });
  m.start();
  const d = encodeChannelData(0x4001, Buffer.from('abcd'), true);
  for (let i = 0; i < 3; i++) m.fromAppDatagram(d, d.length, T0);
  assert.equal(stats.queueDropped, 1);
  assert.equal(m.state.queueDropped, 1);
  assert.equal(m.dialed({ kind: 'open' }).length, 2);
});

test('a Refresh success with lifetime 0 is delivered, then the flow closes', () => {
  const { m } = machine('udp');
  m.start();
  m.dialed({ kind: 'open' });
  const released = success(Method.Refresh, 0);
  assert.deepEqual(plain(m.fromUpstream(released, T0)), [
    { kind: 'send-app', data: hex(released), pad: 0 },
    { kind: 'close', reason: 'allocation released (Refresh with lifetime 0)', level: 'info' },
  ]);
  assert.equal(m.isClosed(), true);
  assert.deepEqual(m.fromUpstream(released, T0), []);
});

test('upstream bytes that are not TURN close the flow with a warning', () => {
  const { m } = machine('udp');
  m.start();
  m.dialed({ kind: 'open' });
  const actions = m.fromUpstream(Buffer.from('ff00000000000000', 'hex'), T0);
  assert.equal(actions.length, 1);
  const a = actions[0];
  assert.ok(a?.kind === 'close' && a.level === 'warn' && a.reason.startsWith('upstream sent data that is not TURN'), JSON.stringify(a));
});

test('a dial that gets no turn closes quietly; one that fails is counted and warned', () => {
  const { m: late } = machine('udp');
  late.start();
  assert.deepEqual(plain(late.dialed({ kind: 'no-turn' })), [
    { kind: 'close', reason: 'no turn to open a Tor stream in time (new flows came faster than --new-flows-per-second)', level: 'debug' },
  ]);
  const { m, stats } = machine('udp');
  m.start();
  assert.deepEqual(plain(m.dialed({ kind: 'failed', reason: 'SOCKS refused' })), [
    { kind: 'close', reason: 'no upstream stream: SOCKS refused', level: 'warn' },
  ]);
  assert.equal(stats.upstreamFailures, 1);
  assert.deepEqual(m.dialed({ kind: 'open' }), [], 'a closed flow ignores late news');
});

test('a UDP flow that will not open answers the app at once: 500 for a failed dial, 508 for no turn, one answer per transaction, nothing for what is not a request; a TCP flow just closes', () => {
  for (const [report, code] of [
    [{ kind: 'failed', reason: 'SOCKS refused' }, 500],
    [{ kind: 'no-turn' }, 508],
  ] as const) {
    const { m } = machine('udp');
    m.start();
    const req = allocate();
    m.fromAppDatagram(req, req.length, T0);
    m.fromAppDatagram(req, req.length, T0 + 500); // the app's retransmission, same transaction
    const data = encodeChannelData(0x4001, Buffer.from('abcde'), false);
    m.fromAppDatagram(data, data.length, T0 + 600);
    const out = m.dialed(report);
    assert.deepEqual(kinds(out), ['send-app', 'close']);
    const a = out[0];
    assert.ok(a?.kind === 'send-app');
    const answer = decodeMessage(a.data);
    assert.ok(answer.ok);
    assert.equal(answer.value.method, Method.Allocate);
    assert.equal(answer.value.messageClass, MessageClass.ErrorResponse);
    assert.equal(hex(answer.value.transactionId), hex(req.subarray(8, 20)));
    const e = readAttribute(answer.value, AttributeType.ErrorCode);
    assert.ok(e?.ok && e.value.kind === 'error-code');
    assert.equal(e.value.code, code);
  }
  const { m: tcp } = machine('tcp');
  tcp.start();
  const req = allocate();
  tcp.fromAppBytes(req, T0);
  assert.deepEqual(kinds(tcp.dialed({ kind: 'failed', reason: 'SOCKS refused' })), ['close']);
});

test('idle: closed exactly once the allocation lifetime (from the server) and the grace have passed', () => {
  const { m } = machine('udp');
  m.start();
  m.dialed({ kind: 'open' });
  const limit = (DEFAULT_LIFETIME_S + IDLE_GRACE_S) * 1000;
  assert.deepEqual(m.tick(T0 + limit), []);
  m.fromUpstream(success(Method.Allocate, 60), T0);
  assert.deepEqual(m.tick(T0 + (60 + IDLE_GRACE_S) * 1000), []);
  assert.deepEqual(plain(m.tick(T0 + (60 + IDLE_GRACE_S) * 1000 + 1)), [
    { kind: 'close', reason: 'idle for longer than the allocation lifetime', level: 'info' },
  ]);
  assert.deepEqual(m.tick(T0 + limit * 2), [], 'closed once');
});

test('TCP: HTTP is refused at its first byte, before any dial', () => {
  const { m, stats } = machine('tcp');
  assert.deepEqual(m.start(), []);
  const a = m.fromAppBytes(Buffer.from('GET / HTTP/1.1\r\n'), T0);
  assert.deepEqual(kinds(a), ['close']);
  assert.equal(a[0]?.kind === 'close' && a[0].level, 'debug');
  assert.equal(stats.appRefused, 1);
});

test('TCP: dials once the first request is whole; holds bytes (app paused) until open; then forwards both ways', () => {
  const { m } = machine('tcp');
  const req = allocate();
  const ch = encodeChannelData(0x4001, Buffer.from('abcde'), true);
  assert.deepEqual(kinds(m.fromAppBytes(req.subarray(0, 5), T0)), []);
  assert.deepEqual(kinds(m.fromAppBytes(req.subarray(5), T0)), ['dial', 'pause-app']);
  assert.deepEqual(kinds(m.fromAppBytes(ch, T0)), ['pause-app']);
  assert.deepEqual(plain(m.dialed({ kind: 'open' })), [
    { kind: 'send-upstream', data: hex(req.subarray(0, 5)), pad: 0 },
    { kind: 'send-upstream', data: hex(req.subarray(5)), pad: 0 },
    { kind: 'send-upstream', data: hex(ch), pad: 0 },
    { kind: 'resume-app' },
  ]);
  assert.deepEqual(kinds(m.fromAppBytes(ch, T0)), ['forward-upstream']);
  assert.deepEqual(kinds(m.fromUpstream(success(Method.Allocate, 600), T0)), ['forward-app']);
  assert.deepEqual(kinds(m.fromUpstream(success(Method.Refresh, 0), T0)), ['forward-app', 'close']);
});

test('TCP pass-through: a Binding is answered by the shim, never dialed, and cut out of what goes upstream', () => {
  const stats = new ShimStats();
  const app = { family: 'IPv4' as const, address: '127.0.0.1', port: 40000 };
  const m = new FlowMachine({ kind: 'tcp', now: T0, stats, app });
  const binding = new MessageBuilder(Method.Binding, MessageClass.Request).build({ fingerprint: true });
  // Bindings only (one split across chunks): answered, no dial.
  const a1 = plain(m.fromAppBytes(Buffer.concat([binding, binding.subarray(0, 7)]), T0));
  assert.deepEqual(
    a1.map((a) => (a as { kind: string }).kind),
    ['send-app'],
  );
  assert.deepEqual(kinds(m.fromAppBytes(binding.subarray(7), T0)), ['send-app']);
  assert.equal(stats.bindingsAnswered, 2);
  const answer = decodeMessage(Buffer.from((a1[0] as { data: string }).data, 'hex'));
  assert.ok(answer.ok && answer.value.method === Method.Binding && answer.value.messageClass === MessageClass.SuccessResponse);
  // A Binding then an Allocate in one chunk: the Allocate dials, and only it goes upstream.
  const req = allocate();
  assert.deepEqual(kinds(m.fromAppBytes(Buffer.concat([binding, req.subarray(0, 10)]), T0)), ['send-app']);
  assert.deepEqual(kinds(m.fromAppBytes(req.subarray(10), T0)), ['dial', 'pause-app']);
  const sent = m.dialed({ kind: 'open' }).flatMap((a) => (a.kind === 'send-upstream' ? [a.data] : []));
  assert.equal(hex(Buffer.concat(sent)), hex(req));
  // Once open, a Binding goes upstream like anything else (the stream is there already).
  assert.deepEqual(kinds(m.fromAppBytes(binding, T0)), ['forward-upstream']);
});

test('a dial report for a flow that dialed nothing is ignored: a Binding split around it is still answered, nothing goes upstream', () => {
  const stats = new ShimStats();
  const app = { family: 'IPv4' as const, address: '127.0.0.1', port: 40000 };
  const m = new FlowMachine({ kind: 'tcp', now: T0, stats, app });
  const binding = new MessageBuilder(Method.Binding, MessageClass.Request).build();
  assert.deepEqual(kinds(m.fromAppBytes(binding.subarray(0, 16), T0)), []);
  assert.deepEqual(kinds(m.dialed({ kind: 'open' })), []);
  assert.deepEqual(kinds(m.fromAppBytes(binding.subarray(16), T0)), ['send-app']);
  assert.equal(stats.bindingsAnswered, 1);
  assert.notEqual(m.phase, 'open');
});

test('TCP pass-through: a connection that only sends Bindings holds its slot no longer than FIRST_REQUEST_TIMEOUT_MS', () => {
  const stats = new ShimStats();
  const m = new FlowMachine({ kind: 'tcp', now: T0, stats, app: { family: 'IPv4', address: '127.0.0.1', port: 40000 } });
  m.fromAppBytes(new MessageBuilder(Method.Binding, MessageClass.Request).build(), T0);
  assert.deepEqual(kinds(m.tick(T0 + FIRST_REQUEST_TIMEOUT_MS + 1)), ['close']);
});

test('TCP: a connection without a whole first request is closed after exactly FIRST_REQUEST_TIMEOUT_MS', () => {
  const { m } = machine('tcp');
  m.fromAppBytes(allocate().subarray(0, 12), T0);
  assert.deepEqual(m.tick(T0 + FIRST_REQUEST_TIMEOUT_MS), []);
  assert.deepEqual(kinds(m.tick(T0 + FIRST_REQUEST_TIMEOUT_MS + 1)), ['close']);
});

test('TCP: the app closing or the stream failing closes the flow, with the reason', () => {
  const { m } = machine('tcp');
  assert.deepEqual(plain(m.appEnded()), [{ kind: 'close', reason: 'app closed the connection', level: 'info' }]);
  const { m: n } = machine('tcp');
  assert.deepEqual(plain(n.upstreamFailed('ECONNRESET')), [{ kind: 'close', reason: 'upstream stream failed: ECONNRESET', level: 'warn' }]);
  assert.deepEqual(n.upstreamEnded(), []);
});

test('local mode: a wrong password is answered by the shim and costs no dial; a right one dials and fetches a credential', () => {
  const local = { username: 'app', password: 'app-pass', realm: 'onionturn.local' };
  const auth = new AppAuthenticator(local);
  const { m } = machine('udp', { resigner: new CredentialResigner({ auth, app: { family: 'IPv4', address: '127.0.0.1', port: 5000 } }) });
  assert.deepEqual(m.start(), [], 'no circuit before the app has authenticated');
  const challenge = m.fromAppDatagram(allocate(), allocate().length, T0);
  assert.deepEqual(kinds(challenge), ['send-app']);
  const c = challenge[0];
  const decoded = c?.kind === 'send-app' ? decodeMessage(c.data) : undefined;
  assert.ok(decoded?.ok);
  const nonce = readText(decoded.value, AttributeType.Nonce) as string;
  const signed = (password: string): Buffer =>
    new MessageBuilder(Method.Allocate, MessageClass.Request)
      .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
      .add(AttributeType.Username, { kind: 'text', text: local.username })
      .add(AttributeType.Realm, { kind: 'text', text: local.realm })
      .add(AttributeType.Nonce, { kind: 'text', text: nonce })
      .build({ integrityKey: longTermKey(local.username, local.realm, password), sha1: true, fingerprint: true });
  const wrong = signed('nope');
  assert.deepEqual(kinds(m.fromAppDatagram(wrong, wrong.length, T0)), ['send-app', 'warn']);
  const right = signed(local.password);
  assert.deepEqual(kinds(m.fromAppDatagram(right, right.length, T0)), ['dial']);
  assert.deepEqual(kinds(m.turnGranted()), ['fetch-credential']);
  // The first copy goes unsigned (the server's 401 brings realm and nonce); the credential signs the retry.
  assert.deepEqual(kinds(m.dialed({ kind: 'open' })), ['send-upstream']);
  const failed = m.credential({ ok: false, error: { code: 'credentials', reason: 'endpoint down' } }, T0);
  assert.deepEqual(plain(failed), [{ kind: 'close', reason: 'no upstream credential: endpoint down', level: 'warn' }]);
});
