// When our own tor is started again after it died under the shim: 1 s, doubling to 60 s while it
// keeps dying, back to 1 s once a tor ran for a while; never given up. Times from a ManualClock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../src/clock.js';
import { TOR_RESTART_FIRST_MS, TOR_RESTART_MAX_MS, TOR_RESTART_STABLE_MS, TorRestartSchedule } from '../src/tor-restart.js';

/** tor dies `ranMs` after each start; the waits the schedule asks for, restarts done on the clock. */
function run(clock: ManualClock, s: TorRestartSchedule, ranMs: readonly number[]): number[] {
  const waits: number[] = [];
  for (const ran of ranMs) {
    clock.advance(ran);
    const wait = s.died(clock.monotonic());
    waits.push(wait);
    clock.after(wait, () => s.started(clock.monotonic()));
    clock.advance(wait);
  }
  return waits;
}

test('a tor that dies at once again and again: 1 s doubling, capped at 60 s, and never given up', () => {
  const clock = new ManualClock();
  const s = new TorRestartSchedule(clock.monotonic());
  const waits = run(clock, s, Array<number>(12).fill(500));
  assert.deepEqual(waits, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000, 60000, 60000]);
  assert.equal(s.restarts, 12);
  assert.equal(clock.pending, 0);
  assert.equal(TOR_RESTART_FIRST_MS, 1000);
  assert.equal(TOR_RESTART_MAX_MS, 60_000);
});

test('a tor that ran a while before it died starts the backoff afresh; one that ran less keeps doubling', () => {
  const clock = new ManualClock();
  const s = new TorRestartSchedule(clock.monotonic());
  assert.deepEqual(run(clock, s, [10 * 60_000, 100, 100, 100]), [1000, 2000, 4000, 8000]);
  assert.deepEqual(run(clock, s, [TOR_RESTART_STABLE_MS, 100]), [1000, 2000]);
  assert.deepEqual(run(clock, s, [TOR_RESTART_STABLE_MS - 1]), [4000]);
  assert.equal(s.restarts, 7);
});

test('the first death, whenever it comes, waits the first delay', () => {
  const clock = new ManualClock();
  const s = new TorRestartSchedule(clock.monotonic());
  clock.advance(5);
  assert.equal(s.died(clock.monotonic()), TOR_RESTART_FIRST_MS);
  assert.equal(s.restarts, 0);
});

test('a wall-clock step does not move the schedule (it runs on monotonic time)', () => {
  const clock = new ManualClock();
  const s = new TorRestartSchedule(clock.monotonic());
  assert.deepEqual(run(clock, s, [100, 100]), [1000, 2000]);
  clock.stepWall(TOR_RESTART_STABLE_MS * 10);
  assert.deepEqual(run(clock, s, [100]), [4000]);
});
