// When to keep a Tor stream to the server open ahead of need (issue 14: setup without waiting for a
// circuit). Building a circuit is most of a call's setup on a slow network, so a new flow that finds
// a ready stream starts at once. Pure: the flow table dials and holds the stream; this says when.
// - Only while an app has been active recently: an idle shim must not build circuits (or, for an
//   onion server, rendezvous) forever.
// - Replaced before the server's allocate deadline (30 s for a connection without an allocation)
//   closes it, so a flow never takes a stream the server is about to drop.

export interface ReadyStreamOptions {
  /** Keep one only while a flow started within this window (ms). */
  readonly activeMs: number;
  /** Replace it at this age (ms): under the server's 30 s allocate deadline, with room for a flow's first request. */
  readonly maxAgeMs: number;
  /** After a failed or lost ready stream, wait this long before the next dial (ms). */
  readonly retryMs: number;
}

export const DEFAULT_READY_STREAM: ReadyStreamOptions = { activeMs: 10 * 60_000, maxAgeMs: 20_000, retryMs: 5_000 };

export class ReadyStreamPolicy {
  readonly #opts: ReadyStreamOptions;
  #lastFlowAt = -Infinity;
  #openedAt: number | undefined;
  #dialing = false;
  #retryAt = -Infinity;

  constructor(opts: ReadyStreamOptions = DEFAULT_READY_STREAM) {
    this.#opts = opts;
  }

  /** Whether a stream is held now. */
  get held(): boolean {
    return this.#openedAt !== undefined;
  }

  /** An app flow asked for a stream: the shim is active. */
  flowStarted(now: number): void {
    this.#lastFlowAt = now;
  }

  /** The held stream should go: too old for the server's deadline, or no app active any more. */
  stale(now: number): boolean {
    return this.#openedAt !== undefined && (now - this.#openedAt >= this.#opts.maxAgeMs || !this.#active(now));
  }

  /** Time to dial one: an app is active, none is held or on its way, and no failure is fresh. */
  wantDial(now: number): boolean {
    return !this.#dialing && this.#openedAt === undefined && this.#active(now) && now >= this.#retryAt;
  }

  dialing(): void {
    this.#dialing = true;
  }

  opened(now: number): void {
    this.#dialing = false;
    this.#openedAt = now;
  }

  /** The dial failed, or the held stream closed before a flow took it. */
  failed(now: number): void {
    this.#dialing = false;
    this.#openedAt = undefined;
    this.#retryAt = now + this.#opts.retryMs;
  }

  /** A flow took the stream, or the table let a stale one go: the next can be dialed. */
  released(): void {
    this.#openedAt = undefined;
  }

  #active(now: number): boolean {
    return now - this.#lastFlowAt < this.#opts.activeMs;
  }
}
