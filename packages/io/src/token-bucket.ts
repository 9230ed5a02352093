// One token bucket, time passed in (no timers), plain arithmetic per call and no allocation: the
// server's relay path takes bytes from it per packet; the credential endpoint takes a request
// (per source, so one client cannot lock out the rest, and in total); the shim paces its dials.
// Pure, but kept here in io, the one package all three of those depend on.

const TOKENS = 0;
const LAST = 1;

export class TokenBucket {
  // [tokens, last refill ms] in a typed array: writing a double there allocates nothing, while
  // V8 (Node 20) boxes double-valued fields on every write. The server's relay path takes from
  // two or three buckets per datagram (5M relayed datagrams: 47 more scavenges with fields).
  readonly #state = new Float64Array(2);

  /** `ratePerSec` tokens per second up to `burst` (full at start); a rate of 0 means unlimited. */
  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    nowMs: number,
  ) {
    if (!(ratePerSec >= 0) || !(burst >= 0)) throw new RangeError('a token bucket needs a rate and a burst of 0 or more');
    this.#state[TOKENS] = burst;
    this.#state[LAST] = nowMs;
  }

  /** Takes `n` tokens if there are enough; false (and nothing taken) otherwise. */
  take(n: number, nowMs: number): boolean {
    if (!this.has(n, nowMs)) return false;
    if (this.ratePerSec !== 0) this.#state[TOKENS] = (this.#state[TOKENS] as number) - n;
    return true;
  }

  /** True when `n` tokens are there now (nothing taken): for taking from two buckets or neither. */
  has(n: number, nowMs: number): boolean {
    if (this.ratePerSec === 0) return true;
    this.#refill(nowMs);
    return (this.#state[TOKENS] as number) >= n;
  }

  /** Full again: a bucket that is full holds no state worth keeping. */
  full(nowMs: number): boolean {
    return this.ratePerSec === 0 || this.has(this.burst, nowMs);
  }

  /** Milliseconds from `nowMs` until `n` tokens are there (0: now; Infinity: never, n > burst). */
  msUntil(n: number, nowMs: number): number {
    if (this.ratePerSec === 0) return 0;
    if (n > this.burst) return Infinity;
    this.#refill(nowMs);
    const tokens = this.#state[TOKENS] as number;
    return tokens >= n ? 0 : ((n - tokens) * 1000) / this.ratePerSec;
  }

  #refill(nowMs: number): void {
    const st = this.#state;
    const elapsed = nowMs - (st[LAST] as number);
    if (elapsed > 0) {
      st[TOKENS] = Math.min(this.burst, (st[TOKENS] as number) + (elapsed * this.ratePerSec) / 1000);
      st[LAST] = nowMs;
    }
  }

  /** Whole seconds (at least 1) until `n` tokens are back, as of the last take: for Retry-After. */
  secondsUntil(n: number): number {
    if (this.ratePerSec === 0) return 0;
    return Math.max(1, Math.ceil((n - (this.#state[TOKENS] as number)) / this.ratePerSec));
  }
}

/**
 * Token buckets per source (a client address, or a Tor circuit id behind an onion service), in
 * memory only, never logged. At most `maxSources` are kept; the oldest goes first when a new one
 * comes, so state stays bounded whatever the number of sources.
 */
export class SourceBuckets {
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    readonly maxSources = 10_000,
  ) {}

  get size(): number {
    return this.#buckets.size;
  }

  /** The bucket of this source, made full when new. */
  get(source: string, nowMs: number): TokenBucket {
    let b = this.#buckets.get(source);
    if (b === undefined) {
      if (this.#buckets.size >= this.maxSources) {
        const oldest = this.#buckets.keys().next().value as string;
        this.#buckets.delete(oldest);
      }
      b = new TokenBucket(this.ratePerSec, this.burst, nowMs);
      this.#buckets.set(source, b);
    }
    return b;
  }
}
