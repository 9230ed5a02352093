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
