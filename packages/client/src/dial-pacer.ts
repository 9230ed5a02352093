// How fast the shim opens Tor streams. Any web page can make the browser send TURN to
// 127.0.0.1:3478 (an RTCPeerConnection with that iceServer), and with per-flow isolation each
// flow is a new Tor circuit: the flow limit bounds how many at once, this bounds how fast. Flows
// over the rate wait their turn in order (one timer for the queue) rather than being closed: a
// TURN/TCP app is not reconnected by libwebrtc, and a UDP app would churn a flow per retransmission.
// Turns go round the flows' sources (dial-fairness.ts): a flood from one source delays another's
// first dial by at most one pacing interval.
import { TokenBucket } from '@onionturn/io';
import type { Clock, Timer } from './clock.js';
import { FairQueue } from './dial-fairness.js';

/** New Tor streams per second when nothing says otherwise; a call needs a few (one per ICE transport). */
export const DEFAULT_NEW_FLOWS_PER_SECOND = 5;
const DEFAULT_WAIT_MS = 30_000;

export interface DialPacerOptions {
  /** 0: no limit. */
  readonly perSecond: number;
  /** Default: four seconds' worth (at least 1). */
  readonly burst?: number;
  /** How long a flow waits for its turn before it is given up (default 30 s). */
  readonly waitMs?: number;
  /** A flow has to wait (the shim counts and warns). */
  readonly onDelayed: (nowMs: number) => void;
  /** A flow waited longer than waitMs and is given up. */
  readonly onGivenUp: () => void;
  /** Its monotonic time and its one timer. */
  readonly clock: Clock;
}

interface Waiting {
  readonly since: number;
  readonly isClosed: () => boolean;
  readonly deadline: number;
  readonly resolve: (ok: boolean) => void;
}

export class DialPacer {
  readonly #bucket: TokenBucket;
  readonly #opts: DialPacerOptions;
  /** Fair among sources, first come first served within one; at most the shim's flow limit long. */
  readonly #queue: FairQueue<Waiting>;
  #timer: Timer | undefined;

  constructor(opts: DialPacerOptions) {
    this.#opts = opts;
    // Monotonic time: a step of the wall clock would stop the refill.
    this.#bucket = new TokenBucket(opts.perSecond, Math.max(1, opts.burst ?? Math.ceil(4 * opts.perSecond)), opts.clock.monotonic());
    this.#queue = new FairQueue(opts.perSecond > 0 ? 1000 / opts.perSecond : 0);
  }

  /**
   * A flow's turn to open its Tor stream: true at once, or a promise that settles true when the
   * turn comes, false when the wait was too long or the pacer stopped. A flow that closes while
   * waiting (`isClosed`) gives its turn to the next. `source`: who asks (see dial-fairness.ts).
   */
  turn(isClosed: () => boolean, source = ''): true | Promise<boolean> {
    const now = this.#opts.clock.monotonic();
    const queue = this.#queue;
    if (queue.size === 0 && this.#bucket.take(1, now)) {
      // The sources remembered stay as few as those that had a turn within the last interval.
      queue.prune(now);
      queue.turnTaken(source, now);
      return true;
    }
    this.#opts.onDelayed(now);
    return new Promise((resolve) => {
      queue.push(source, { since: now, isClosed, deadline: now + (this.#opts.waitMs ?? DEFAULT_WAIT_MS), resolve });
      this.#schedule(now);
    });
  }

  /** Flows waiting for their turn. */
  get waiting(): number {
    return this.#queue.size;
  }

  /** Ends every wait (false) and the timer. */
  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    for (const w of this.#queue.clear()) w.resolve(false);
  }

  /** Due when the next token is, or when a source's head's wait ends (a head waits longest in its source). */
  #schedule(now: number): void {
    if (this.#timer !== undefined || this.#queue.size === 0) return;
    let deadline = Infinity;
    for (const [, head] of this.#queue.heads()) deadline = Math.min(deadline, head.deadline);
    const ms = Math.min(this.#bucket.msUntil(1, now), deadline - now);
    this.#timer = this.#opts.clock.after(Math.max(1, Math.ceil(ms)), () => {
      this.#timer = undefined;
      this.#drain();
    });
  }

  #drain(): void {
    const now = this.#opts.clock.monotonic();
    const queue = this.#queue;
    // Closed flows and waits that ended leave first, from every source, using no token.
    for (const [source] of [...queue.heads()]) {
      let head;
      while ((head = queue.head(source)) !== undefined && (head.isClosed() || head.deadline <= now)) {
        queue.shift(source);
        if (!head.isClosed()) this.#opts.onGivenUp();
        head.resolve(false);
      }
    }
    let source;
    while ((source = queue.next()) !== undefined) {
      const head = queue.head(source) as Waiting;
      if (head.isClosed()) {
        queue.shift(source);
        head.resolve(false);
        continue;
      }
      if (!this.#bucket.take(1, now)) break;
      queue.shift(source);
      queue.turnTaken(source, now);
      head.resolve(true);
    }
    queue.prune(now);
    this.#schedule(now);
  }
}
