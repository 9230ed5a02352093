// One token bucket, time passed in (no timers), plain arithmetic per call and no allocation: the
// server's relay path takes bytes from it per packet; the credential endpoint takes a request.
// The endpoint's bucket is global, not per client address: behind Tor every client shares the
// exit's or the onion service's address, and we keep no per-address state to log or leak.

export class TokenBucket {
  #tokens: number;
  #last: number;

  /** `ratePerSec` tokens per second up to `burst` (full at start); a rate of 0 means unlimited. */
  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    nowMs: number,
  ) {
    if (!(ratePerSec >= 0) || !(burst >= 0)) throw new RangeError('a token bucket needs a rate and a burst of 0 or more');
    this.#tokens = burst;
    this.#last = nowMs;
  }

  /** Takes `n` tokens if there are enough; false (and nothing taken) otherwise. */
  take(n: number, nowMs: number): boolean {
    if (this.ratePerSec === 0) return true;
    this.#refill(nowMs);
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  /** Milliseconds from `nowMs` until `n` tokens are there (0: now; Infinity: never, n > burst). */
  msUntil(n: number, nowMs: number): number {
    if (this.ratePerSec === 0) return 0;
    if (n > this.burst) return Infinity;
    this.#refill(nowMs);
    return this.#tokens >= n ? 0 : ((n - this.#tokens) * 1000) / this.ratePerSec;
  }

  #refill(nowMs: number): void {
    const elapsed = nowMs - this.#last;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSec) / 1000);
      this.#last = nowMs;
    }
  }

  /** Whole seconds (at least 1) until `n` tokens are back, as of the last take: for Retry-After. */
  secondsUntil(n: number): number {
    if (this.ratePerSec === 0) return 0;
    return Math.max(1, Math.ceil((n - this.#tokens) / this.ratePerSec));
  }
}
