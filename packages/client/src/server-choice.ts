// Which upstream server a new flow dials, and where it goes next when that dial fails: the choice
// among healthy servers (failover, round robin or random) and each server's health from its recent
// dial results. A server whose dial failed is skipped until a retry time that doubles with each
// failure in a row; once due, one flow at a time probes it. Servers in backoff are still tried
// when nothing healthy is left, the least recently failed first. Pure: time passed in (monotonic
// ms), randomness injected.

export const SERVER_CHOICES = ['failover', 'round-robin', 'random'] as const;
/**
 * failover: every flow starts at the server that worked last (at first, the first given);
 * round-robin: new flows take the healthy servers in turn; random: a healthy one at random.
 */
export type ServerChoiceMode = (typeof SERVER_CHOICES)[number];

/** First wait after a failed dial before a server is tried again; it doubles per failure in a row. */
export const DEFAULT_SERVER_RETRY_MS = 30_000;
/** The longest wait (ten minutes): a server that comes back is found within it. */
export const DEFAULT_SERVER_MAX_RETRY_MS = 600_000;

export interface ServerChoiceOptions {
  readonly mode: ServerChoiceMode;
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
  /** Uniform in [0, 1) (random mode); default Math.random. */
  readonly random?: () => number;
}

/** A dial's outcome as health sees it: 'unknown' when the failure was not the server's (a dead SOCKS proxy). */
export type DialVerdict = 'ok' | 'failed' | 'unknown';

export interface ServerHealthView {
  /** Not in backoff: new flows may choose it. */
  readonly healthy: boolean;
  /** Failed dials in a row (0 after a dial that opened). */
  readonly failuresInRow: number;
  /** While in backoff: ms until it is tried again. */
  readonly retryInMs: number | undefined;
}

interface Health {
  failures: number;
  /** Monotonic ms from which it may be chosen again (meaningful when failures > 0). */
  retryAt: number;
  lastFailedAt: number;
  /** A flow is dialing it after its backoff ran out: the others wait for that result. */
  probing: boolean;
}

export class ServerChoice {
  readonly mode: ServerChoiceMode;
  readonly #health: Health[];
  readonly #retryMs: number;
  readonly #maxRetryMs: number;
  readonly #random: () => number;
  /** failover: the server that worked last; round-robin: the next in turn. */
  #cursor = 0;

  constructor(count: number, opts: ServerChoiceOptions) {
    if (count < 1) throw new Error('at least one upstream server is needed');
    this.mode = opts.mode;
    this.#retryMs = opts.retryMs ?? DEFAULT_SERVER_RETRY_MS;
    this.#maxRetryMs = Math.max(this.#retryMs, opts.maxRetryMs ?? DEFAULT_SERVER_MAX_RETRY_MS);
    this.#random = opts.random ?? Math.random;
    this.#health = Array.from({ length: count }, () => ({ failures: 0, retryAt: 0, lastFailedAt: 0, probing: false }));
  }

  get count(): number {
    return this.#health.length;
  }

  /** Chosen now for a new flow: healthy, or due for a retry nobody is probing yet. */
  #choosable(i: number, now: number): boolean {
    const h = this.#health[i] as Health;
    return h.failures === 0 || (now >= h.retryAt && !h.probing);
  }

  /**
   * The server a flow dials next, having dialed `tried` (in vain): undefined when it has tried
   * them all. Call it right before the dial, and record() the dial's outcome.
   */
  next(tried: ReadonlySet<number>, now: number): number | undefined {
    const n = this.#health.length;
    const healthy: number[] = [];
    for (let k = 0; k < n; k++) {
      // In rotation from the cursor, so failover and round robin take the first of these.
      const i = (this.#cursor + k) % n;
      if (!tried.has(i) && this.#choosable(i, now)) healthy.push(i);
    }
    let pick: number | undefined;
    if (healthy.length > 0) {
      pick = this.mode === 'random' ? healthy[Math.min(healthy.length - 1, Math.floor(this.#random() * healthy.length))] : healthy[0];
      // A new flow moves the turn on; a flow falling back does not take a second one.
      if (this.mode === 'round-robin' && tried.size === 0) this.#cursor = ((pick as number) + 1) % n;
    } else {
      // Nothing healthy left: the one that failed longest ago is likeliest back.
      let best = -1;
      for (let i = 0; i < n; i++) {
        if (tried.has(i)) continue;
        if (best < 0 || (this.#health[i] as Health).lastFailedAt < (this.#health[best] as Health).lastFailedAt) best = i;
      }
      pick = best < 0 ? undefined : best;
    }
    if (pick !== undefined) {
      const h = this.#health[pick] as Health;
      if (h.failures > 0) h.probing = true;
    }
    return pick;
  }

  record(index: number, verdict: DialVerdict, now: number): void {
    const h = this.#health[index];
    if (h === undefined) return;
    h.probing = false;
    if (verdict === 'ok') {
      h.failures = 0;
      if (this.mode === 'failover') this.#cursor = index;
    } else if (verdict === 'failed') {
      h.failures++;
      h.lastFailedAt = now;
      h.retryAt = now + Math.min(this.#maxRetryMs, this.#retryMs * 2 ** Math.min(h.failures - 1, 30));
    }
  }

  view(index: number, now: number): ServerHealthView {
    const h = this.#health[index] as Health;
    const waiting = h.failures > 0 && now < h.retryAt;
    return { healthy: !waiting, failuresInRow: h.failures, retryInMs: waiting ? h.retryAt - now : undefined };
  }
}
