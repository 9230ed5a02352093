// Warnings a peer can trigger per message (a malicious app or upstream): the first of each kind
// is logged, the rest only counted, so nobody can flood the log through the shim. Pure.

export class WarnOnce<K extends string = string> {
  readonly #seen = new Set<K>();
  #suppressed = 0;

  /** True the first time `kind` is seen (log it); false after (it was counted). */
  first(kind: K): boolean {
    if (!this.#seen.has(kind)) {
      this.#seen.add(kind);
      return true;
    }
    this.#suppressed++;
    return false;
  }

  /** Warnings not logged because their kind had been logged before. */
  get suppressed(): number {
    return this.#suppressed;
  }
}

/**
 * Warnings any local program can trigger where there is no flow to count them on (a wrong local
 * password from a fresh source port): one line per interval at most, the rest counted.
 */
export class WarnEvery {
  readonly #intervalMs: number;
  #next = -Infinity;
  #suppressed = 0;

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  /** When this one is to be logged, how many were not since the last line; else undefined (counted). */
  due(now: number): number | undefined {
    if (now < this.#next) {
      this.#suppressed++;
      return undefined;
    }
    this.#next = now + this.#intervalMs;
    const n = this.#suppressed;
    this.#suppressed = 0;
    return n;
  }
}
