// Fairness among the sources of new flows, sans-IO: who gets the next turn to open a Tor stream
// (FairQueue, used by the DialPacer) and how many flow slots one source may hold (SourceSlots,
// used by the FlowTable). Any web page can make the browser send TURN to the shim on 127.0.0.1
// and fill both, so that the user's own app waits behind it.
//
// What a "source" is: the app's IP address as the shim sees it (the UDP source address without
// its port; a TCP connection's peer address). The port is no identity: every RTCPeerConnection
// (the app's and a page's alike) takes fresh ephemeral ports, so per port or per 5-tuple each
// flow would be its own source and fairness would be plain first come first served. Nor is the
// isolation key one (per-flow isolation gives each flow its own). The address is the one thing a
// page cannot multiply: it tells apart apps that reach the shim from different loopback
// addresses (e.g. an app bound to 127.0.0.2, a container's or network namespace's address, or
// the ::1 family), but NOT a page from the app when both are in the same browser (both arrive
// from 127.0.0.1). That case is what local-credential mode is for: there a flow dials only once
// the app has shown the local password, which a page does not have. Here a flood from one source
// costs another source at most one pacing slot before its first dial, and leaves it flow slots.
//
// Order: start-time fair queueing. Each source's next turn is due at the later of when its oldest
// waiter arrived and one pacing interval after its last turn; the earliest due goes first (ties:
// the earlier arrival). Within a source: first come first served. A source that waited gets its
// turn within one interval even behind a long queue of another; an idle source builds no credit.

/** One waiter, as the queue needs it. */
export interface Queued {
  /** When it began to wait (monotonic ms). */
  readonly since: number;
}

interface SourceState<W> {
  readonly waiting: W[];
  /** Monotonic ms of its last turn (-Infinity: none yet). */
  lastTurn: number;
}

/** Waiters grouped by source; the pacer asks it whose turn is next. */
export class FairQueue<W extends Queued> {
  readonly #sources = new Map<string, SourceState<W>>();
  /** One pacing interval (ms): how far a turn moves its source back. 0: no pacing, arrival order. */
  readonly #intervalMs: number;
  /** Most waiters one source may have (further ones are refused at once). */
  readonly #perSource: number;
  #size = 0;

  constructor(intervalMs: number, perSource = Infinity) {
    this.#intervalMs = intervalMs;
    this.#perSource = perSource;
  }

  get size(): number {
    return this.#size;
  }

  /** Queues w for its source; false (not queued) when that source already has perSource waiting. */
  push(source: string, w: W): boolean {
    let s = this.#sources.get(source);
    if (s === undefined) {
      s = { waiting: [], lastTurn: -Infinity };
      this.#sources.set(source, s);
    }
    if (s.waiting.length >= this.#perSource) return false;
    s.waiting.push(w);
    this.#size++;
    return true;
  }

  /** A source had a turn at `now` (from the queue or at once, without waiting). */
  turnTaken(source: string, now: number): void {
    const s = this.#sources.get(source);
    if (s !== undefined) s.lastTurn = now;
    else if (this.#intervalMs > 0) this.#sources.set(source, { waiting: [], lastTurn: now });
  }

  /** The source whose head is due first, or undefined when nobody waits. */
  next(): string | undefined {
    let best: string | undefined;
    let bestDue = Infinity;
    let bestSince = Infinity;
    for (const [source, s] of this.#sources) {
      const head = s.waiting[0];
      if (head === undefined) continue;
      const due = Math.max(head.since, s.lastTurn + this.#intervalMs);
      if (due < bestDue || (due === bestDue && head.since < bestSince)) {
        best = source;
        bestDue = due;
        bestSince = head.since;
      }
    }
    return best;
  }

  /** The head waiter of a source. */
  head(source: string): W | undefined {
    return this.#sources.get(source)?.waiting[0];
  }

  /** Removes and returns the head waiter of a source. */
  shift(source: string): W | undefined {
    const s = this.#sources.get(source);
    const w = s?.waiting.shift();
    if (w !== undefined) this.#size--;
    return w;
  }

  /** Every source's head (for deadlines and closed flows). */
  *heads(): IterableIterator<[string, W]> {
    for (const [source, s] of this.#sources) {
      const head = s.waiting[0];
      if (head !== undefined) yield [source, head];
    }
  }

  /** Forgets sources with nobody waiting whose last turn no longer matters at `now`. */
  prune(now: number): void {
    for (const [source, s] of this.#sources) {
      if (s.waiting.length === 0 && s.lastTurn + this.#intervalMs <= now) this.#sources.delete(source);
    }
  }

  /** Empties the queue, returning every waiter. */
  clear(): W[] {
    const all: W[] = [];
    for (const s of this.#sources.values()) all.push(...s.waiting);
    this.#sources.clear();
    this.#size = 0;
    return all;
  }
}

/**
 * Flow slots per source: one source may hold all but a reserve of the shim's flow limit, so a
 * flood from one leaves `reserve` slots to the others (default: an eighth of the limit; none for
 * limits under 8, where there is nothing to spare).
 */
export class SourceSlots {
  readonly #counts = new Map<string, number>();
  readonly #perSource: number;

  constructor(maxFlows: number, reserve = Math.floor(maxFlows / 8)) {
    this.#perSource = Math.max(1, maxFlows - reserve);
  }

  /** Most flows one source may hold. */
  get perSource(): number {
    return this.#perSource;
  }

  /** True (and counted) when the source may open one more flow. */
  take(source: string): boolean {
    const n = this.#counts.get(source) ?? 0;
    if (n >= this.#perSource) return false;
    this.#counts.set(source, n + 1);
    return true;
  }

  release(source: string): void {
    const n = this.#counts.get(source) ?? 0;
    if (n <= 1) this.#counts.delete(source);
    else this.#counts.set(source, n - 1);
  }

  held(source: string): number {
    return this.#counts.get(source) ?? 0;
  }
}
