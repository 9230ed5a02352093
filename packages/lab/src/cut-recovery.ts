// How long video stopped after a Tor stream was cut mid-call (bench:call --cut-at): from samples
// of the receiver's framesDecoded counter (polled every ~100 ms), the time from the cut until
// frames are decoded again after the outage the cut caused. Pure, so it is unit-tested.
//
// Frames already inside Tor or in the receiver's jitter buffer are still decoded just after the
// cut, so "decoded again" is the end of the longest decoding gap that begins soon after the cut
// (within `outageStartsWithinMs`: what was inside Tor and the jitter buffer at the cut plays
// out within it), not the first frame after it; a later freeze from congestion
// is not the cut's.

/** One poll: when (ms, any clock shared with cutAt) and the counter then. */
export interface FrameSample {
  readonly at: number;
  readonly framesDecoded: number;
}

export interface CutRecovery {
  /** Cut to the first decoded frame after the outage, ms; undefined = video never came back. */
  readonly recoverMs: number | undefined;
  /** The outage itself: the longest gap between decoded frames that began after the cut, ms. */
  readonly gapMs: number;
}

/** Gaps shorter than this after the cut are ordinary frame spacing, not an outage. */
export const MIN_OUTAGE_MS = 300;
/** Still no frame this close to the end of the samples after the outage began: never recovered. */
export const NEVER_AFTER_MS = 2000;

/**
 * Recovery from samples in time order. `cutAt` is on the samples' clock. When no gap of at least
 * MIN_OUTAGE_MS begins within `outageStartsWithinMs` after the cut, the cut cost no visible
 * outage: recoverMs is then the time to the first frame decoded after the cut.
 */
export function cutRecovery(samples: readonly FrameSample[], cutAt: number, outageStartsWithinMs = 1500): CutRecovery {
  // Times at which the counter had moved since the previous sample (a frame was decoded).
  const progress: number[] = [];
  for (let i = 1; i < samples.length; i++) {
    if (samples[i]!.framesDecoded > samples[i - 1]!.framesDecoded) progress.push(samples[i]!.at);
  }
  const end = samples.at(-1)?.at ?? cutAt;
  const lastBefore = [...progress].reverse().find((t) => t <= cutAt) ?? cutAt;
  let best: { start: number; end: number | undefined } | undefined;
  let prev = lastBefore;
  const after = progress.filter((t) => t > cutAt);
  for (const t of after) {
    if (prev <= cutAt + outageStartsWithinMs && t - prev >= MIN_OUTAGE_MS && (!best || t - prev > (best.end ?? Infinity) - best.start)) {
      best = { start: prev, end: t };
    }
    prev = t;
  }
  // The gap still open at the end of the samples (no frame since `prev`).
  if (prev <= cutAt + outageStartsWithinMs && end - prev >= NEVER_AFTER_MS && (!best || end - prev > (best.end ?? Infinity) - best.start)) {
    return { recoverMs: undefined, gapMs: end - prev };
  }
  if (best?.end !== undefined) return { recoverMs: best.end - cutAt, gapMs: best.end - best.start };
  const first = after[0];
  return first === undefined ? { recoverMs: undefined, gapMs: end - prev } : { recoverMs: first - cutAt, gapMs: first - lastBefore };
}
