// The stream kept ready ahead of need (issue 14, deliverable 5): when it is dialed, replaced and let
// go, on a fake clock; and the flow table handing it to the next flow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { AttributeType, MessageBuilder, MessageClass, Method, decodeMessage, errorCodeValue } from '@onionturn/protocol';
import { ManualClock } from '../src/clock.js';
import { FlowTable } from '../src/flow-table.js';
import { DEFAULT_READY_STREAM, ReadyStreamPolicy } from '../src/ready-stream.js';
import { ServerChoice } from '../src/server-choice.js';
import type { UpstreamServer } from '../src/endpoints.js';
import type { SocksAuth } from '../src/socks5-codec.js';
import type { DialResult } from '../src/upstream-dialer.js';

test('policy: nothing while no app was active; one after a flow; replaced before 20 s; none 10 min after the last flow', () => {
  const p = new ReadyStreamPolicy();
  assert.equal(p.wantDial(0), false, 'an idle shim builds no circuits');
  p.flowStarted(1000);
  assert.equal(p.wantDial(1000), true);
  p.dialing();
  assert.equal(p.wantDial(1100), false, 'one at a time');
  p.opened(1500);
  assert.equal(p.stale(1500 + DEFAULT_READY_STREAM.maxAgeMs - 1), false);
  assert.ok(DEFAULT_READY_STREAM.maxAgeMs < 30_000, "under the server's allocate deadline");
  assert.equal(p.stale(1500 + DEFAULT_READY_STREAM.maxAgeMs), true, 'replaced before the server closes it');
  p.released();
  assert.equal(p.wantDial(21_500), true, 'and a fresh one dialed');
  p.dialing();
  p.opened(22_000);
  assert.equal(p.stale(1000 + DEFAULT_READY_STREAM.activeMs), true, 'no app for 10 min: let go');
  p.released();
  assert.equal(p.wantDial(1000 + DEFAULT_READY_STREAM.activeMs), false, 'and none dialed');
});

test('policy: a failed or lost ready stream waits retryMs before the next dial', () => {
  const p = new ReadyStreamPolicy();
  p.flowStarted(0);
  p.dialing();
  p.failed(100);
  assert.equal(p.wantDial(100 + DEFAULT_READY_STREAM.retryMs - 1), false);
  assert.equal(p.wantDial(100 + DEFAULT_READY_STREAM.retryMs), true);
});

/** How the fake server answers an Allocate: a 401 with realm and nonce (ours, coturn's), an allocation (no auth), nothing. */
type ProbeAnswer = '401' | 'allocated' | 'silent';

/** What the server says to a request on the stream, by `answer`. */
function serverAnswer(request: Buffer, answer: ProbeAnswer): Buffer | undefined {
  const r = decodeMessage(request);
  if (!r.ok || answer === 'silent') return undefined;
  if (answer === 'allocated') return new MessageBuilder(Method.Allocate, MessageClass.SuccessResponse, r.value.transactionId).build();
  return new MessageBuilder(Method.Allocate, MessageClass.ErrorResponse, r.value.transactionId)
    .add(AttributeType.ErrorCode, errorCodeValue(401))
    .add(AttributeType.Realm, { kind: 'text', text: 'onionturn.test' })
    .add(AttributeType.Nonce, { kind: 'text', text: 'obMatJos2AAABnonce' })
    .build();
}

/** What the table needs of a Tor stream: events, pause/resume, write, destroy; the server behind it answers per `answer`. */
class HeldSocket extends EventEmitter {
  destroyed = false;
  flowing = false;
  readonly written: Buffer[] = [];
  constructor(readonly answer: ProbeAnswer = '401') {
    super();
  }
  setNoDelay(): this {
    return this;
  }
  write(b: Buffer): boolean {
    this.written.push(b);
    const reply = serverAnswer(b, this.answer);
    if (reply) queueMicrotask(() => this.emit('data', reply));
    return true;
  }
  pause(): this {
    this.flowing = false;
    return this;
  }
  resume(): this {
    this.flowing = true;
    return this;
  }
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      this.emit('close');
    }
    return this;
  }
}

const SERVER = { transport: 'tcp', host: 's.onion', port: 443, label: 's.onion:443' } as UpstreamServer;

function table(
  perSecond = 0,
  answer: ProbeAnswer = '401',
  heldLog: string[] = [],
): { t: FlowTable; clock: ManualClock; dials: { auth: SocksAuth | undefined; socket: HeldSocket }[]; taken: () => number } {
  const clock = new ManualClock();
  let taken = 0;
  const dials: { auth: SocksAuth | undefined; socket: HeldSocket }[] = [];
  const t = new FlowTable({
    clock,
    maxFlows: 16,
    isolation: 'per-flow',
    tickMs: 1000,
    pacing: { perSecond, burst: 1, onDelayed: () => {}, onGivenUp: () => {} },
    servers: new ServerChoice(1, { mode: 'failover' }),
    readyStream: DEFAULT_READY_STREAM,
    onReadyTaken: () => taken++,
    onReadyHeld: (auth) => heldLog.push(`held ${auth.username}`),
    onReadyDropped: (auth) => heldLog.push(`dropped ${auth.username}`),
    connect: (_index, auth): Promise<DialResult> => {
      const socket = new HeldSocket(answer);
      dials.push({ auth, socket });
      return Promise.resolve({ ok: true, socket: socket as never, head: Buffer.alloc(0), server: SERVER });
    },
  });
  return { t, clock, dials, taken: () => taken };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('flow table: the first flow dials and a stream is made ready; the next flow starts on it with its own isolation, and another is made ready', async () => {
  const { t, dials, taken } = table();
  const first = await t.openStream(
    1,
    () => false,
    () => {},
  );
  assert.equal(first.kind, 'open');
  await flush();
  assert.equal(dials.length, 2, 'the flow and one ready stream');
  assert.equal(t.readyStreamHeld, true);
  assert.equal(dials[1]?.socket.flowing, true, 'read while held, so a closed one is noticed');
  let turnAuth: SocksAuth | undefined;
  const second = await t.openStream(
    2,
    () => false,
    (a) => (turnAuth = a),
  );
  assert.ok(second.kind === 'open');
  assert.equal(second.socket as unknown, dials[1]?.socket, 'no dial of its own');
  assert.deepEqual(turnAuth, dials[1]?.auth, 'told the circuit it is on (a credential is fetched there)');
  assert.notDeepEqual(dials[1]?.auth, dials[0]?.auth, 'per-flow isolation: its own circuit');
  assert.equal(dials[1]?.socket.flowing, false, 'handed over paused, the flow resumes it');
  assert.equal(dials[1]?.socket.listenerCount('data'), 0, "the table's listeners are off");
  await flush();
  assert.equal(dials.length, 3, 'the next one is made ready');
  assert.equal(taken(), 1);
  t.stop('test over');
  assert.equal(dials[2]?.socket.destroyed, true, 'stop closes the held stream');
});

test("flow table: a held stream's outcome says what crossed it before the flow took it (the probe, the 401), so the flow counts the stream's bytes from its first as the server does", async () => {
  const { t, dials } = table();
  const first = await t.openStream(
    1,
    () => false,
    () => {},
  );
  assert.ok(first.kind === 'open' && first.prior === undefined, 'a stream dialed for the flow: nothing crossed it yet');
  await flush();
  const held = dials[1]?.socket as HeldSocket;
  const probe = held.written[0] as Buffer;
  const answer = serverAnswer(probe, '401') as Buffer;
  const second = await t.openStream(
    2,
    () => false,
    () => {},
  );
  assert.ok(second.kind === 'open' && (second.socket as unknown) === held);
  // Uncounted, the server's reports acknowledged the probe's 28 bytes more than the flow had
  // written (a small write acknowledged before it arrived: a round trip of 147 ms measured on a
  // 500-ms path), and the flow's acknowledged the 401 never.
  assert.deepEqual(second.prior, { sent: probe.length, received: answer.length });
  assert.equal(second.head.length, 0, 'the 401 is not in head as well');
  t.stop('test over');
});

test('flow table: the held stream is replaced before the server would close it, and let go when apps are idle', async () => {
  const { t, clock, dials } = table();
  await t.openStream(
    1,
    () => false,
    () => {},
  );
  await flush();
  assert.equal(dials.length, 2);
  clock.advance(DEFAULT_READY_STREAM.maxAgeMs);
  t.tick();
  await flush();
  assert.equal(dials[1]?.socket.destroyed, true, 'the old one closed at 20 s');
  assert.equal(dials.length, 3, 'a fresh one in its place');
  // No flow for 10 minutes: the held stream goes and none is dialed again.
  for (let ms = 0; ms < DEFAULT_READY_STREAM.activeMs; ms += DEFAULT_READY_STREAM.maxAgeMs) {
    clock.advance(DEFAULT_READY_STREAM.maxAgeMs);
    t.tick();
    await flush();
  }
  const before = dials.length;
  assert.equal(t.readyStreamHeld, false);
  assert.ok(
    dials.every((d) => d.socket.destroyed || d === dials[0]),
    'every ready stream closed',
  );
  clock.advance(60_000);
  t.tick();
  await flush();
  assert.equal(dials.length, before, 'an idle shim dials nothing');
  t.stop('test over');
});

test('flow table: a held stream that Tor or the server closes is not handed out', async () => {
  const { t, dials } = table();
  await t.openStream(
    1,
    () => false,
    () => {},
  );
  await flush();
  dials[1]?.socket.emit('end');
  assert.equal(t.readyStreamHeld, false);
  const next = await t.openStream(
    2,
    () => false,
    () => {},
  );
  assert.ok(next.kind === 'open' && (next.socket as unknown) !== dials[1]?.socket);
  t.stop('test over');
});

test("flow table: told when a stream is held ready (its flow's credential is fetched ahead) and when one goes untaken: replaced, closed, stopped; not when a flow takes it", async () => {
  const log: string[] = [];
  const { t, clock, dials } = table(0, '401', log);
  const user = (i: number): string => dials[i]?.auth?.username ?? '?';
  await t.openStream(
    1,
    () => false,
    () => {},
  );
  await flush();
  assert.deepEqual(log, [`held ${user(1)}`], 'held once the 401 came');
  await t.openStream(
    2,
    () => false,
    () => {},
  );
  await flush();
  assert.deepEqual(log.splice(0), [`held ${user(1)}`, `held ${user(2)}`], 'taken: not dropped; the next one held');
  clock.advance(DEFAULT_READY_STREAM.maxAgeMs);
  t.tick();
  await flush();
  assert.deepEqual(log.splice(0), [`dropped ${user(2)}`, `held ${user(3)}`], 'replaced at 20 s');
  dials[3]?.socket.emit('end');
  assert.deepEqual(log.splice(0), [`dropped ${user(3)}`], 'closed by Tor or the server');
  clock.advance(DEFAULT_READY_STREAM.retryMs);
  t.tick();
  await flush();
  assert.deepEqual(log.splice(0), [`held ${user(4)}`]);
  t.stop('test over');
  assert.deepEqual(log, [`dropped ${user(4)}`], 'stop');
});

test('flow table: a flow with a fixed isolation or a server to go back to never takes the held stream', async () => {
  const { t, dials } = table();
  await t.openStream(
    1,
    () => false,
    () => {},
  );
  await flush();
  const auth = { username: 'assoc', password: 'x' };
  const fixed = await t.openStream(
    2,
    () => false,
    () => {},
    auth,
  );
  assert.ok(fixed.kind === 'open' && (fixed.socket as unknown) !== dials[1]?.socket);
  const pinned = await t.openStream(
    3,
    () => false,
    () => {},
    undefined,
    undefined,
    0,
  );
  assert.ok(pinned.kind === 'open' && (pinned.socket as unknown) !== dials[1]?.socket);
  assert.equal(t.readyStreamHeld, true);
  t.stop('test over');
});

test("flow table: a take-over (takeHeld) to the held stream's server starts on it, with its challenge; to another server it dials", async () => {
  const { t, dials } = table();
  await t.openStream(
    1,
    () => false,
    () => {},
  );
  await flush();
  const moveAuth = { username: 'flow-1-move-1', password: 'move' };
  const elsewhere = await t.openStream(
    1,
    () => false,
    () => {},
    moveAuth,
    undefined,
    7,
    true,
  );
  assert.ok(elsewhere.kind === 'open' && (elsewhere.socket as unknown) !== dials[1]?.socket, 'another server: a dial of its own');
  const moved = await t.openStream(
    1,
    () => false,
    () => {},
    moveAuth,
    undefined,
    0,
    true,
  );
  assert.ok(moved.kind === 'open' && (moved.socket as unknown) === dials[1]?.socket && moved.ready === true, 'the held stream: open already');
  assert.equal(moved.challenge?.messageClass, MessageClass.ErrorResponse, "the server's 401 on it comes along");
  t.stop('test over');
});

test('flow table: the held stream waits its turn with the pacer like any stream (a flood taking held streams cannot dial past it)', async () => {
  const { t, clock, dials } = table(1);
  await t.openStream(
    1,
    () => false,
    () => {},
  );
  await flush();
  assert.equal(dials.length, 1, 'one stream per second: the held one waits for the next turn');
  clock.advance(1000);
  await flush();
  assert.equal(dials.length, 2, 'dialed at its turn');
  // The next flow takes it; the one after it is again dialed only at the next turn.
  await t.openStream(
    2,
    () => false,
    () => {},
  );
  await flush();
  assert.equal(dials.length, 2);
  clock.advance(1000);
  await flush();
  assert.equal(dials.length, 3);
  t.stop('test over');
});

test('flow table: the held stream goes to the server the last flow opened on, not to a new choice (it must not be the dial that tries a dead server)', async () => {
  const clock = new ManualClock();
  const dialed: number[] = [];
  const t = new FlowTable({
    clock,
    maxFlows: 16,
    isolation: 'per-flow',
    tickMs: 1000,
    pacing: { perSecond: 0, onDelayed: () => {}, onGivenUp: () => {} },
    servers: new ServerChoice(2, { mode: 'round-robin', random: () => 0 }),
    readyStream: DEFAULT_READY_STREAM,
    connect: (index): Promise<DialResult> => {
      dialed.push(index);
      return Promise.resolve({ ok: true, socket: new HeldSocket() as never, head: Buffer.alloc(0), server: SERVER });
    },
  });
  const first = await t.openStream(
    1,
    () => false,
    () => {},
  );
  assert.ok(first.kind === 'open');
  await flush();
  assert.deepEqual(dialed, [first.index, first.index], 'round robin would have taken the other server');
  t.stop('test over');
});

test("flow table: a held stream is offered once the server's 401 to the probe came, and the flow that takes it gets that challenge", async () => {
  const { t, dials } = table();
  const first = await t.openStream(
    1,
    () => false,
    () => {},
  );
  assert.ok(first.kind === 'open' && first.challenge === undefined, "a flow's own stream has none");
  assert.equal(dials[0]?.socket.written.length, 0, "the table writes nothing on a flow's own stream");
  await flush();
  assert.equal(dials[1]?.socket.written.length, 1, 'the probe on the held stream');
  assert.equal(t.readyStreamHeld, true);
  const second = await t.openStream(
    2,
    () => false,
    () => {},
  );
  assert.ok(second.kind === 'open' && second.ready === true);
  assert.equal(second.challenge?.messageClass, MessageClass.ErrorResponse);
  assert.equal(second.head.length, 0, 'the answer is taken out of what the flow reads');
  t.stop('test over');
});

test("flow table: a held stream's age counts from its connect, not from the probe's answer (the server's 30 s deadline does)", async () => {
  const { t, clock, dials } = table(0, 'silent');
  await t.openStream(
    1,
    () => false,
    () => {},
  );
  await flush();
  const held = dials[1]?.socket as HeldSocket;
  // The 401 comes 5 s after the probe (a slow path).
  clock.advance(5000);
  held.emit('data', serverAnswer(held.written[0] as Buffer, '401') as Buffer);
  assert.equal(t.readyStreamHeld, true);
  clock.advance(DEFAULT_READY_STREAM.maxAgeMs - 5000);
  t.tick();
  assert.equal(held.destroyed, true, 'replaced at 20 s after its connect');
  t.stop('test over');
});

test('flow table: while the probe is unanswered the stream is not offered; unanswered for 10 s, it is dropped and another dialed later', async () => {
  const { t, clock, dials } = table(0, 'silent');
  await t.openStream(
    1,
    () => false,
    () => {},
  );
  await flush();
  assert.equal(dials.length, 2);
  assert.equal(t.readyStreamHeld, false, 'not offered before the 401');
  const own = await t.openStream(
    2,
    () => false,
    () => {},
  );
  assert.ok(own.kind === 'open' && own.ready === undefined && (own.socket as unknown) === dials[2]?.socket, 'a flow meanwhile dials its own');
  clock.advance(10_000);
  t.tick();
  assert.equal(dials[1]?.socket.destroyed, true, 'dropped after 10 s without an answer');
  clock.advance(DEFAULT_READY_STREAM.retryMs);
  t.tick();
  await flush();
  assert.equal(dials.length, 4, 'another one dialed after the retry pause');
  t.stop('test over');
});

test('flow table: a server that allocates on the probe (no authentication): that stream is dropped, the next held one is not probed and is offered', async () => {
  const { t, clock, dials } = table(0, 'allocated');
  await t.openStream(
    1,
    () => false,
    () => {},
  );
  await flush();
  assert.equal(dials[1]?.socket.destroyed, true, "its allocation is not the app's: dropped");
  assert.equal(t.readyStreamHeld, false);
  clock.advance(DEFAULT_READY_STREAM.retryMs);
  t.tick();
  await flush();
  assert.equal(dials.length, 3);
  assert.equal(dials[2]?.socket.written.length, 0, 'no probe this time');
  assert.equal(t.readyStreamHeld, true);
  const next = await t.openStream(
    2,
    () => false,
    () => {},
  );
  assert.ok(next.kind === 'open' && next.ready === true && next.challenge === undefined);
  t.stop('test over');
});
