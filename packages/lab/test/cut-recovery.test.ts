import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cutRecovery, type FrameSample } from '../src/cut-recovery.js';

/** Samples every 100 ms from `from` to `to` (ms); a frame decoded in every poll except inside `gaps`. */
function poll(from: number, to: number, gaps: readonly [number, number][]): FrameSample[] {
  const out: FrameSample[] = [];
  let n = 0;
  for (let at = from; at <= to; at += 100) {
    if (!gaps.some(([a, b]) => at > a && at < b)) n += 3;
    out.push({ at, framesDecoded: n });
  }
  return out;
}

test('cut recovery: the end of the outage that follows the cut, not the frames still in flight', () => {
  // Cut at 15 s; frames in flight keep coming until 15.4 s, then nothing until 17.2 s.
  const r = cutRecovery(poll(10_000, 40_000, [[15_400, 17_200]]), 15_000);
  assert.equal(r.recoverMs, 2200);
  assert.equal(r.gapMs, 1800);
});

test('cut recovery: video that never comes back is undefined (never), however long the run', () => {
  const r = cutRecovery(poll(10_000, 40_000, [[15_300, 41_000]]), 15_000);
  assert.equal(r.recoverMs, undefined);
  assert.ok(r.gapMs >= 24_000);
});

test('cut recovery: a later freeze from congestion is not the cut', () => {
  // A short outage after the cut, and a longer freeze 10 s later.
  const r = cutRecovery(
    poll(10_000, 40_000, [
      [15_100, 15_900],
      [25_000, 28_000],
    ]),
    15_000,
  );
  assert.equal(r.recoverMs, 900);
});

test('cut recovery: no visible outage is the time to the next decoded frame', () => {
  const r = cutRecovery(poll(10_000, 20_000, []), 15_050);
  assert.equal(r.recoverMs, 50);
  assert.equal(r.gapMs, 100, 'the gap around the cut, not a negative one');
});
