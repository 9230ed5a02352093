// The flow table without sockets, on a manual clock: keys, isolation per flow, the turn to dial,
// and what a flow learns when it gives up waiting. The connector is the test's (it records what
// it was asked and refuses, as a dead proxy would).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as macrotask } from 'node:timers/promises';
import { ManualClock } from '../src/clock.js';
import { FlowTable, udpFlowKey, type StreamOutcome, type TableFlow } from '../src/flow-table.js';
import type { IsolationMode } from '../src/isolation.js';
import { ServerChoice } from '../src/server-choice.js';
import type { SocksAuth } from '../src/socks5-codec.js';
import type { DialResult } from '../src/upstream-dialer.js';

interface Dial {
  readonly auth: SocksAuth | undefined;
  readonly flowId: number;
  readonly at: number;
}

function table(isolation: IsolationMode, perSecond = 0, burst = 1, waitMs = 30_000): { t: FlowTable; clock: ManualClock; dials: Dial[] } {
  const clock = new ManualClock();
  const dials: Dial[] = [];
  const t = new FlowTable({
    clock,
    maxFlows: 2,
    isolation,
    tickMs: 1000,
    pacing: { perSecond, burst, waitMs, onDelayed: () => {}, onGivenUp: () => {} },
    servers: new ServerChoice(1, { mode: 'failover' }),
    connect: (_index, auth, flowId): Promise<DialResult> => {
      dials.push({ auth, flowId, at: clock.monotonic() });
      return Promise.resolve({ ok: false, error: { code: 'socks-unreachable', reason: 'no proxy' } });
    },
  });
  return { t, clock, dials };
}

class Flow implements TableFlow {
  readonly ticks: number[] = [];
  closedWith: string | undefined;
  constructor(
    readonly id: number,
    readonly key: string | undefined,
  ) {}
  tick(now: number): void {
    this.ticks.push(now);
  }
  close(reason: string): void {
    this.closedWith = reason;
  }
}

test('per-flow isolation: each flow dials with fresh SOCKS credentials, told before the dial', async () => {
  const { t, dials } = table('per-flow');
  const told: SocksAuth[] = [];
  const a = await t.openStream(
    1,
    () => false,
    (auth) => told.push(auth),
  );
  const b = await t.openStream(
    2,
    () => false,
    (auth) => told.push(auth),
  );
  assert.deepEqual(
    [a, b],
    [
      { kind: 'failed', error: { code: 'socks-unreachable', reason: 'no proxy' } },
      { kind: 'failed', error: { code: 'socks-unreachable', reason: 'no proxy' } },
    ],
  );
  assert.deepEqual(
    dials.map((d) => d.flowId),
    [1, 2],
  );
  assert.deepEqual(
    dials.map((d) => d.auth),
    told,
  );
  assert.notEqual(told[0]?.username, told[1]?.username);
  const { t: s, dials: sd } = table('shared');
  await s.openStream(
    1,
    () => false,
    () => {},
  );
  await s.openStream(
    2,
    () => false,
    () => {},
  );
  assert.deepEqual(sd[0]?.auth, sd[1]?.auth);
});

test('the turn to dial: the second flow dials exactly when its token comes; a flow that closes meanwhile never dials', async () => {
  const { t, clock, dials } = table('per-flow', 10, 1);
  const t0 = clock.monotonic();
  const outcomes: StreamOutcome[] = [];
  void t
    .openStream(
      1,
      () => false,
      () => {},
    )
    .then((r) => outcomes.push(r));
  let closed = false;
  void t
    .openStream(
      2,
      () => closed,
      () => {},
    )
    .then((r) => outcomes.push(r));
  void t
    .openStream(
      3,
      () => false,
      () => {},
    )
    .then((r) => outcomes.push(r));
  await macrotask();
  assert.deepEqual(
    dials.map((d) => [d.flowId, d.at]),
    [[1, t0]],
  );
  closed = true;
  clock.advance(100);
  await macrotask();
  assert.deepEqual(
    dials.map((d) => [d.flowId, d.at]),
    [
      [1, t0],
      [3, t0 + 100],
    ],
  );
  assert.deepEqual(
    outcomes.map((o) => o.kind),
    ['failed', 'abandoned', 'failed'],
  );
});

test('a flow that waits longer than the wait allows gets no turn', async () => {
  const { t, clock, dials } = table('per-flow', 0.01, 1, 500);
  await t.openStream(
    1,
    () => false,
    () => {},
  );
  let outcome: StreamOutcome | undefined;
  void t
    .openStream(
      2,
      () => false,
      () => {},
    )
    .then((r) => (outcome = r));
  clock.advance(499);
  await macrotask();
  assert.equal(outcome, undefined);
  clock.advance(1);
  await macrotask();
  assert.deepEqual(outcome, { kind: 'no-turn' });
  assert.equal(dials.length, 1);
});

test('keys, the flow limit, the tick with its coarse clock, and stop', () => {
  const { t, clock } = table('per-flow');
  const key = udpFlowKey('127.0.0.1', 5000);
  const u = new Flow(t.nextId(), key);
  const c = new Flow(t.nextId(), undefined);
  t.add(u);
  assert.equal(t.full, false);
  t.add(c);
  assert.equal(t.size, 2);
  assert.equal(t.full, true);
  assert.equal(t.udpFlow(key), u);
  const replacement = new Flow(t.nextId(), key);
  t.add(replacement);
  t.forget(u); // a late forget of the old flow must not drop its successor
  assert.equal(t.udpFlow(key), replacement);
  const before = t.now;
  t.start();
  clock.advance(1000);
  assert.equal(t.now, before + 1000, 'the coarse clock moves with the tick');
  assert.deepEqual(replacement.ticks, [t.now]);
  assert.deepEqual(c.ticks, [t.now]);
  t.stop('shim stopping');
  assert.equal(replacement.closedWith, 'shim stopping');
  assert.equal(c.closedWith, 'shim stopping');
  assert.equal(clock.pending, 0, 'no timer left');
});

test('a wall-clock step (NTP, a resumed laptop) does not reach the flows: they tick on monotonic time, so none looks idle', () => {
  const { t, clock } = table('per-flow');
  const f = new Flow(t.nextId(), udpFlowKey('127.0.0.1', 5000));
  t.add(f);
  t.start();
  clock.advance(1000);
  clock.stepWall(3_600_000);
  clock.advance(1000);
  clock.stepWall(-7_200_000);
  clock.advance(1000);
  // Flows compare these times with their last activity: a jump here would close every flow as idle.
  assert.deepEqual(
    f.ticks.slice(1).map((now, i) => now - (f.ticks[i] as number)),
    [1000, 1000],
  );
  t.stop('test over');
});

test('flow slots per source: one source may hold all but an eighth of the limit, the rest stays for others', () => {
  const clock = new ManualClock();
  const t = new FlowTable({
    clock,
    maxFlows: 16,
    isolation: 'per-flow',
    tickMs: 1000,
    pacing: { perSecond: 0, onDelayed: () => {}, onGivenUp: () => {} },
    servers: new ServerChoice(1, { mode: 'failover' }),
    connect: () => Promise.resolve({ ok: false, error: { code: 'socks-unreachable', reason: 'no proxy' } }),
  });
  const flows: (TableFlow & { source: string })[] = [];
  for (let i = 0; t.fullFor('127.0.0.1') === false; i++) {
    const f = Object.assign(new Flow(t.nextId(), udpFlowKey('127.0.0.1', 40000 + i)), { source: '127.0.0.1' });
    t.add(f);
    flows.push(f);
  }
  assert.equal(flows.length, 14, 'a flood from one source stops two slots short of the limit');
  assert.equal(t.fullFor('127.0.0.2'), false, 'another source still gets a slot');
  const other = Object.assign(new Flow(t.nextId(), udpFlowKey('127.0.0.2', 50000)), { source: '127.0.0.2' });
  t.add(other);
  t.forget(flows[0] as Flow & { source: string });
  assert.equal(t.fullFor('127.0.0.1'), false, 'a closed flow gives its source its slot back');
  t.forget(flows[0] as Flow & { source: string });
  assert.equal(t.size, 14, 'forgetting twice releases once');
});
