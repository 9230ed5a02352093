// A token bucket with time passed in (no timers): bounds the request rate of the credential
// endpoint. It is global, not per client address: behind Tor every client shares the exit's
// or the onion service's address, and we keep no per-address state to log or leak.

export interface Take {
  readonly allowed: boolean;
  /** When refused, whole seconds until one token is back (for Retry-After). */
  readonly retryAfterSeconds: number;
}

export class TokenBucket {
  readonly #capacity: number;
  readonly #perMs: number;
  #tokens: number;
  #last: number | undefined;

  /** `capacity` requests at once, refilled at `perMinute` requests per minute. */
  constructor(perMinute: number, capacity: number = perMinute) {
    if (!(perMinute > 0) || !(capacity >= 1)) throw new RangeError('a token bucket needs perMinute > 0 and capacity >= 1');
    this.#capacity = capacity;
    this.#perMs = perMinute / 60_000;
    this.#tokens = capacity;
  }

  take(now: number): Take {
    if (this.#last !== undefined && now > this.#last) {
      this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#last) * this.#perMs);
    }
    if (this.#last === undefined || now > this.#last) this.#last = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return { allowed: true, retryAfterSeconds: 0 };
    }
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - this.#tokens) / this.#perMs / 1000)) };
  }
}
