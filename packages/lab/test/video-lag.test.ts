// bench:call's video lag from (display time, RTP timestamp) pairs: the least delayed frame is 0,
// a frame shown later than its capture spacing says lags by the difference, the 32-bit RTP
// timestamp wraps without a jump.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { videoLagMs } from '../src/index.js';

/** 90 kHz ticks per ms. */
const MS = 90;

test('each frame lags by how much later it was shown than the least delayed one', () => {
  // Captured every 50 ms; the third frame shown 120 ms late, the first 10 ms late.
  const t0 = 1_000_000;
  const frames = [1000 + 10, t0, 1050, t0 + 50 * MS, 1100 + 120, t0 + 100 * MS, 1150, t0 + 150 * MS];
  assert.deepEqual(videoLagMs(frames), [10, 0, 120, 0]);
});

test('the RTP timestamp wrapping past 2^32 is no jump', () => {
  const near = 2 ** 32 - 20 * MS;
  // 20 ms before the wrap, then 30 ms after it (at 10 ms past zero), each shown 40 ms after the last.
  const frames = [5000, near, 5030, 10 * MS, 5060, 40 * MS];
  assert.deepEqual(videoLagMs(frames), [0, 0, 0]);
});

test('no frame shown: no lag', () => {
  assert.deepEqual(videoLagMs([]), []);
});
