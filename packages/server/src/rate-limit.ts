// Token buckets for bandwidth and event rates. Plain arithmetic per call, no allocation: they
// sit on the relay's per-packet path.

export class TokenBucket {
  #tokens: number;
  #last: number;

  /** `ratePerSec` tokens per second up to `burst`; a rate of 0 means unlimited. */
  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    nowMs: number,
  ) {
    this.#tokens = burst;
    this.#last = nowMs;
  }

  /** Takes `n` tokens if there are enough; false (and nothing taken) otherwise. */
  take(n: number, nowMs: number): boolean {
    if (this.ratePerSec === 0) return true;
    const elapsed = nowMs - this.#last;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSec) / 1000);
      this.#last = nowMs;
    }
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }
}
