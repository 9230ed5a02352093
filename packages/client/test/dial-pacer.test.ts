// The shim's pace of new Tor streams on a manual clock, without sockets or sleeps: turns in order
// at the rate, a closed waiter passes its turn on, a long wait is given up, stop() ends every wait.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as macrotask } from 'node:timers/promises';
import { ManualClock } from '../src/clock.js';
import { DialPacer } from '../src/dial-pacer.js';

function pacer(perSecond: number, burst: number, waitMs = 30_000): { p: DialPacer; clock: ManualClock; delayed: number[]; givenUp: number[] } {
  const clock = new ManualClock();
  const delayed: number[] = [];
  const givenUp: number[] = [];
  const p = new DialPacer({ perSecond, burst, waitMs, clock, onDelayed: (now) => delayed.push(now), onGivenUp: () => givenUp.push(clock.monotonic()) });
  return { p, clock, delayed, givenUp };
}

/** Records when each wait settles, in monotonic ms, and with what. */
function track(clock: ManualClock, turn: true | Promise<boolean>, log: [number, boolean][]): void {
  void Promise.resolve(turn).then((ok) => log.push([clock.monotonic(), ok]));
}

test('within the burst a turn is at once; beyond it turns come in order, exactly at the rate', async () => {
  const { p, clock, delayed } = pacer(20, 2);
  const t0 = clock.monotonic();
  assert.equal(
    p.turn(() => false),
    true,
  );
  assert.equal(
    p.turn(() => false),
    true,
  );
  const log: [number, boolean][] = [];
  for (let i = 0; i < 3; i++)
    track(
      clock,
      p.turn(() => false),
      log,
    );
  assert.deepEqual(delayed, [t0, t0, t0]);
  for (const step of [49, 1, 49, 1, 49, 1]) {
    clock.advance(step);
    await macrotask();
  }
  assert.deepEqual(log, [
    [t0 + 50, true],
    [t0 + 100, true],
    [t0 + 150, true],
  ]);
  assert.equal(clock.pending, 0, 'no timer left once the queue is empty');
});

test('a flow closed while waiting gives its turn to the next, using no token', async () => {
  const { p, clock } = pacer(20, 1);
  const t0 = clock.monotonic();
  assert.equal(
    p.turn(() => false),
    true,
  );
  let closed = false;
  const log: [number, boolean][] = [];
  track(
    clock,
    p.turn(() => closed),
    log,
  );
  track(
    clock,
    p.turn(() => false),
    log,
  );
  closed = true;
  clock.advance(50);
  await macrotask();
  assert.deepEqual(log, [
    [t0 + 50, false],
    [t0 + 50, true],
  ]);
});

test('a wait longer than waitMs is given up at its deadline; stop() ends the rest', async () => {
  const { p, clock, givenUp } = pacer(0.01, 1, 50);
  const t0 = clock.monotonic();
  assert.equal(
    p.turn(() => false),
    true,
  );
  const log: [number, boolean][] = [];
  track(
    clock,
    p.turn(() => false),
    log,
  );
  clock.advance(49);
  await macrotask();
  assert.deepEqual(log, []);
  clock.advance(1);
  await macrotask();
  assert.deepEqual(log, [[t0 + 50, false]]);
  assert.deepEqual(givenUp, [t0 + 50]);

  const { p: q, clock: qc } = pacer(0.01, 1);
  assert.equal(
    q.turn(() => false),
    true,
  );
  const qlog: [number, boolean][] = [];
  track(
    qc,
    q.turn(() => false),
    qlog,
  );
  q.stop();
  await macrotask();
  assert.deepEqual(qlog, [[qc.monotonic(), false]]);
  assert.equal(qc.pending, 0);
});

test('a step of the wall clock neither stops nor speeds the pace (monotonic time)', async () => {
  const { p, clock } = pacer(10, 1);
  const t0 = clock.monotonic();
  assert.equal(
    p.turn(() => false),
    true,
  );
  const log: [number, boolean][] = [];
  track(
    clock,
    p.turn(() => false),
    log,
  );
  clock.stepWall(-3_600_000);
  clock.advance(99);
  await macrotask();
  assert.deepEqual(log, []);
  clock.stepWall(7_200_000);
  clock.advance(1);
  await macrotask();
  assert.deepEqual(log, [[t0 + 100, true]]);
});

test('rate 0 is no limit', () => {
  const { p, delayed } = pacer(0, 0);
  for (let i = 0; i < 1000; i++)
    assert.equal(
      p.turn(() => false),
      true,
    );
  assert.equal(delayed.length, 0);
});

// A web page can make the browser open flow after flow to the shim; another source (see
// dial-fairness.ts for what a source is) must not wait behind all of them.
test("a flood of waiting flows from one source delays another source's first dial by at most one pacing slot", async () => {
  const { p, clock } = pacer(5, 1); // one turn every 200 ms
  const t0 = clock.monotonic();
  assert.equal(
    p.turn(() => false, '127.0.0.1'),
    true,
  );
  const flood: [number, boolean][] = [];
  for (let i = 0; i < 50; i++)
    track(
      clock,
      p.turn(() => false, '127.0.0.1'),
      flood,
    );
  // Two turns of the flood go by, then the other source asks.
  for (let i = 0; i < 2; i++) {
    clock.advance(200);
    await macrotask();
  }
  assert.equal(flood.length, 2);
  clock.advance(10);
  const other: [number, boolean][] = [];
  track(
    clock,
    p.turn(() => false, '127.0.0.2'),
    other,
  );
  clock.advance(190);
  await macrotask();
  assert.deepEqual(other, [[t0 + 600, true]], 'the next turn is the other source’s');
  assert.equal(flood.length, 2);
  // Two waiting sources alternate; within the flood, order is kept.
  const second: [number, boolean][] = [];
  track(
    clock,
    p.turn(() => false, '127.0.0.2'),
    second,
  );
  track(
    clock,
    p.turn(() => false, '127.0.0.2'),
    second,
  );
  for (let i = 0; i < 4; i++) {
    clock.advance(200);
    await macrotask();
  }
  assert.deepEqual(
    second.map(([at]) => at),
    [t0 + 1000, t0 + 1400],
  );
  assert.deepEqual(
    flood.map(([at]) => at),
    [t0 + 200, t0 + 400, t0 + 800, t0 + 1200],
  );
  p.stop();
});

test('a source that had its turn waits one interval before its next; an idle one builds no credit', async () => {
  const { p, clock } = pacer(5, 1);
  const t0 = clock.monotonic();
  assert.equal(
    p.turn(() => false, 'a'),
    true,
  );
  const log: [string, number][] = [];
  const ask = (source: string): void => void Promise.resolve(p.turn(() => false, source)).then(() => log.push([source, clock.monotonic() - t0]));
  ask('a');
  ask('b');
  ask('a');
  for (let i = 0; i < 3; i++) {
    clock.advance(200);
    await macrotask();
  }
  // b, waiting as long as a but without a turn just now, goes first.
  assert.deepEqual(log, [
    ['b', 200],
    ['a', 400],
    ['a', 600],
  ]);
  // Ten idle seconds later (the bucket holds one token: burst 1): b idled longest, but both ask
  // three times at once and they alternate, the earlier asker first.
  clock.advance(10_000);
  await macrotask();
  log.length = 0;
  assert.equal(
    p.turn(() => false, 'x'),
    true,
  );
  for (const s of ['a', 'a', 'a', 'b', 'b', 'b']) ask(s);
  for (let i = 0; i < 6; i++) {
    clock.advance(200);
    await macrotask();
  }
  assert.deepEqual(
    log.map(([s]) => s),
    ['a', 'b', 'a', 'b', 'a', 'b'],
  );
});
