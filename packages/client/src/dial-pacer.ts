// How fast the shim opens Tor streams. Any web page can make the browser send TURN to
// 127.0.0.1:3478 (an RTCPeerConnection with that iceServer), and with per-flow isolation each
// flow is a new Tor circuit: the flow limit bounds how many at once, this bounds how fast. Flows
// over the rate wait their turn in order (one timer for the queue) rather than being closed: a
// TURN/TCP app is not reconnected by libwebrtc, and a UDP app would churn a flow per retransmission.
import { TokenBucket } from '@onionturn/io';
import type { Clock, Timer } from './clock.js';

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
  readonly isClosed: () => boolean;
  readonly deadline: number;
  readonly resolve: (ok: boolean) => void;
}

export class DialPacer {
  readonly #bucket: TokenBucket;
  readonly #opts: DialPacerOptions;
  /** First come first served; at most the shim's flow limit long. */
  readonly #queue: Waiting[] = [];
  #timer: Timer | undefined;

  constructor(opts: DialPacerOptions) {
    this.#opts = opts;
    // Monotonic time: a step of the wall clock would stop the refill.
    this.#bucket = new TokenBucket(opts.perSecond, Math.max(1, opts.burst ?? Math.ceil(4 * opts.perSecond)), opts.clock.monotonic());
  }

  /**
   * A flow's turn to open its Tor stream: true at once, or a promise that settles true when the
   * turn comes, false when the wait was too long or the pacer stopped. A flow that closes while
   * waiting (`isClosed`) gives its turn to the next.
   */
  turn(isClosed: () => boolean): true | Promise<boolean> {
    const now = this.#opts.clock.monotonic();
    if (this.#queue.length === 0 && this.#bucket.take(1, now)) return true;
    this.#opts.onDelayed(now);
    return new Promise((resolve) => {
      this.#queue.push({ isClosed, deadline: now + (this.#opts.waitMs ?? DEFAULT_WAIT_MS), resolve });
      this.#schedule(now);
    });
  }

  /** Flows waiting for their turn. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Ends every wait (false) and the timer. */
  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    for (const w of this.#queue.splice(0)) w.resolve(false);
  }

  /** Due when the next token is, or when the head's wait ends (the head waits longest). */
  #schedule(now: number): void {
    const head = this.#queue[0];
    if (this.#timer !== undefined || head === undefined) return;
    const ms = Math.min(this.#bucket.msUntil(1, now), head.deadline - now);
    this.#timer = this.#opts.clock.after(Math.max(1, Math.ceil(ms)), () => {
      this.#timer = undefined;
      this.#drain();
    });
  }

  #drain(): void {
    const now = this.#opts.clock.monotonic();
    const queue = this.#queue;
    let head;
    while ((head = queue[0]) !== undefined) {
      if (head.isClosed()) head.resolve(false);
      else if (head.deadline <= now) {
        this.#opts.onGivenUp();
        head.resolve(false);
      } else if (this.#bucket.take(1, now)) head.resolve(true);
      else break;
      queue.shift();
    }
    this.#schedule(now);
  }
}
