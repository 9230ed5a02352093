// The shim's pace of new Tor streams, without sockets: turns in order at the rate, a closed
// waiter passes its turn on, a long wait is given up, stop() ends every wait.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { DialPacer } from '../src/index.js';

function pacer(perSecond: number, burst: number, waitMs = 30_000): { p: DialPacer; delayed: number[]; givenUp: number[] } {
  const delayed: number[] = [];
  const givenUp: number[] = [];
  const p = new DialPacer({ perSecond, burst, waitMs, onDelayed: (now) => delayed.push(now), onGivenUp: () => givenUp.push(1) });
  return { p, delayed, givenUp };
}

test('within the burst a turn is at once; beyond it turns come in order at the rate', async () => {
  const { p, delayed } = pacer(20, 2);
  assert.equal(p.turn(() => false), true);
  assert.equal(p.turn(() => false), true);
  const t0 = performance.now();
  const order: number[] = [];
  const waits = [1, 2, 3].map((i) => Promise.resolve(p.turn(() => false)).then((ok) => (order.push(i), ok)));
  assert.deepEqual(await Promise.all(waits), [true, true, true]);
  assert.deepEqual(order, [1, 2, 3]);
  assert.ok(performance.now() - t0 >= 130, `three turns at 20/s took ${performance.now() - t0} ms`);
  assert.equal(delayed.length, 3);
  p.stop();
});

test('a flow closed while waiting gives its turn to the next, using no token', async () => {
  const { p } = pacer(20, 1);
  assert.equal(p.turn(() => false), true);
  let closed = false;
  const first = p.turn(() => closed);
  const second = p.turn(() => false);
  closed = true;
  assert.equal(await first, false);
  const t0 = performance.now();
  assert.equal(await second, true);
  assert.ok(performance.now() - t0 < 45, 'the second took the token the first would have had');
  p.stop();
});

test('a wait longer than waitMs is given up; stop() ends the rest', async () => {
  const { p, givenUp } = pacer(0.01, 1, 50);
  assert.equal(p.turn(() => false), true);
  assert.equal(await p.turn(() => false), false);
  assert.equal(givenUp.length, 1);
  const { p: q } = pacer(0.01, 1);
  assert.equal(q.turn(() => false), true);
  const waiting = q.turn(() => false);
  q.stop();
  assert.equal(await waiting, false);
});

test('rate 0 is no limit', () => {
  const { p, delayed } = pacer(0, 0);
  for (let i = 0; i < 1000; i++) assert.equal(p.turn(() => false), true);
  assert.equal(delayed.length, 0);
});
