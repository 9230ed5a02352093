// When to start our own tor again after it died under the shim. Pure: the times are the injected
// clock's monotonic ms, the caller spawns. The shim never gives up: without tor it carries
// nothing, and at one start a minute at worst a tor that keeps dying costs next to nothing, while
// a tor that comes back (the OOM killer's victim, a dependency fixed) needs no one to restart the
// shim.

/** First wait after a death; doubled per death in a row. */
export const TOR_RESTART_FIRST_MS = 1000;
/** The longest wait between starts. */
export const TOR_RESTART_MAX_MS = 60_000;
/** A tor that ran this long before it died is starting afresh: the next wait is the first again. */
export const TOR_RESTART_STABLE_MS = 120_000;

export class TorRestartSchedule {
  #startedAt: number;
  #delayMs = 0;
  #restarts = 0;

  constructor(startedAt: number) {
    this.#startedAt = startedAt;
  }

  /** Restarts so far. */
  get restarts(): number {
    return this.#restarts;
  }

  /** tor died at `now`: how long to wait before starting it again. */
  died(now: number): number {
    const ranMs = now - this.#startedAt;
    if (ranMs >= TOR_RESTART_STABLE_MS || this.#delayMs === 0) this.#delayMs = TOR_RESTART_FIRST_MS;
    else this.#delayMs = Math.min(TOR_RESTART_MAX_MS, this.#delayMs * 2);
    return this.#delayMs;
  }

  /** A new tor was started (or its start failed at once: then died() follows at the same instant). */
  started(now: number): void {
    this.#startedAt = now;
    this.#restarts++;
  }
}
