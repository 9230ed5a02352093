// The scheduling core of the lab's link shaper: when does each byte that entered a shaped link
// leave it? Pure (times are numbers in ms passed in by the caller, randomness from a seeded
// generator), so it is unit-tested with a fake clock; shaping-proxy.ts is the socket shell.
//
// One shaped link = one TCP proxy in front of a tor relay's ORPort. Per direction a byte goes
//   arrival -> bottleneck (FIFO, shared by every connection through the proxy, `rateKbps`)
//           -> propagation (`delayMs` +- `jitterMs`) -> held while the link stalls -> delivery,
// and a connection's bytes never overtake each other (TCP stays in order; jitter only spreads).

/** How one link (one proxy, both directions) is shaped. */
export interface LinkShape {
  /** One-way propagation delay per direction, ms. */
  readonly delayMs: number;
  /** Uniform jitter added to the delay, +- ms (order is kept, so it spreads rather than reorders). */
  readonly jitterMs?: number;
  /** Bottleneck per direction, shared by all connections through the link, kbit/s. None = unlimited. */
  readonly rateKbps?: number;
  /** The bottleneck's buffer, in ms of its rate: above it the proxy stops reading (backpressure). Default 200. */
  readonly queueMs?: number;
  /** Stalls: the whole link (both directions) delivers nothing for `forMs`, on average every `meanEveryMs`. */
  readonly stall?: { readonly meanEveryMs: number; readonly forMs: number };
}

/** Segments the bottleneck serializes separately (so a 64 KiB read does not leave as one lump). */
export const SEGMENT_BYTES = 1448;

/** A small seeded PRNG (mulberry32): returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One direction's bottleneck: a FIFO server at a fixed rate. */
export class Bottleneck {
  #busyUntil = -Infinity;
  /** Bytes per ms, or undefined for no limit. */
  readonly bytesPerMs: number | undefined;
  constructor(rateKbps: number | undefined) {
    if (rateKbps !== undefined && !(rateKbps > 0)) throw new Error(`rateKbps must be > 0, not ${rateKbps}`);
    this.bytesPerMs = rateKbps === undefined ? undefined : (rateKbps * 1000) / 8 / 1000;
  }
  /** The time the last of `bytes` arriving at `now` has left the bottleneck. */
  transmit(now: number, bytes: number): number {
    if (this.bytesPerMs === undefined) return now;
    const start = Math.max(now, this.#busyUntil);
    this.#busyUntil = start + bytes / this.bytesPerMs;
    return this.#busyUntil;
  }
  /** How long what is queued now still takes to leave, ms. */
  backlogMs(now: number): number {
    return Math.max(0, this.#busyUntil - now);
  }
}

/** Stall windows of one link, drawn lazily (exponential gaps, fixed length). */
export class StallSchedule {
  readonly #windows: { start: number; end: number }[] = [];
  #drawnUntil: number;
  #drawn = 0;
  constructor(
    private readonly stall: LinkShape['stall'],
    private readonly random: () => number,
    startAt = 0,
  ) {
    this.#drawnUntil = startAt;
  }
  /** The earliest time >= t at which the link delivers (t itself unless a stall covers it). */
  release(t: number): number {
    if (!this.stall) return t;
    const { meanEveryMs, forMs } = this.stall;
    while (this.#drawnUntil <= t) {
      const start = this.#drawnUntil + -Math.log(1 - this.random()) * meanEveryMs;
      this.#windows.push({ start, end: start + forMs });
      this.#drawn++;
      this.#drawnUntil = start + forMs;
    }
    // Windows ending before t no longer matter once t has passed them (calls come in rough order).
    while (this.#windows.length > 0 && this.#windows[0]!.end < t - 60_000) this.#windows.shift();
    for (const w of this.#windows) if (t >= w.start && t < w.end) return w.end;
    return t;
  }
  /** The windows still kept (the last minute's and later). */
  windows(): readonly { start: number; end: number }[] {
    return this.#windows;
  }
  /** How many windows were drawn so far. */
  get drawn(): number {
    return this.#drawn;
  }
}

/** The shared parts of one shaped link: a bottleneck per direction and one stall schedule. */
export class ShapedLink {
  readonly up: Bottleneck;
  readonly down: Bottleneck;
  readonly stalls: StallSchedule;
  readonly random: () => number;
  constructor(
    readonly shape: LinkShape,
    seed = 1,
    startAt = 0,
  ) {
    this.random = seededRandom(seed);
    this.up = new Bottleneck(shape.rateKbps);
    this.down = new Bottleneck(shape.rateKbps);
    this.stalls = new StallSchedule(shape.stall, this.random, startAt);
  }
  /** Backlog above which a reader should pause: queueMs of the rate, at least two segments' worth. */
  pauseAboveMs(): number {
    const q = this.shape.queueMs ?? 200;
    const bpm = this.up.bytesPerMs;
    return bpm === undefined ? Infinity : Math.max(q, (2 * SEGMENT_BYTES) / bpm);
  }
}

/** One connection's one direction: a queue of segments, each with the time it is delivered. */
export class DelayLine {
  readonly #queue: { at: number; data: Buffer }[] = [];
  #lastAt = -Infinity;
  #queuedBytes = 0;
  constructor(
    private readonly link: ShapedLink,
    private readonly bottleneck: Bottleneck,
  ) {}

  /** Bytes arrived at `now`: schedules them (in segments) and returns when the last is delivered. */
  push(now: number, data: Buffer): number {
    const { delayMs, jitterMs = 0 } = this.link.shape;
    for (let off = 0; off < data.length; off += SEGMENT_BYTES) {
      const seg = data.subarray(off, Math.min(data.length, off + SEGMENT_BYTES));
      const sent = this.bottleneck.transmit(now, seg.length);
      const jitter = jitterMs > 0 ? (this.link.random() * 2 - 1) * jitterMs : 0;
      let at = sent + Math.max(0, delayMs + jitter);
      at = this.link.stalls.release(at);
      at = Math.max(at, this.#lastAt);
      this.#lastAt = at;
      this.#queue.push({ at, data: seg });
      this.#queuedBytes += seg.length;
    }
    return this.#lastAt;
  }

  /** Everything due at `now`, in order (removed from the queue). */
  due(now: number): Buffer[] {
    const out: Buffer[] = [];
    while (this.#queue.length > 0 && this.#queue[0]!.at <= now) {
      const item = this.#queue.shift()!;
      this.#queuedBytes -= item.data.length;
      out.push(item.data);
    }
    return out;
  }

  /** When the next segment is due, or undefined when nothing is queued. */
  nextAt(): number | undefined {
    return this.#queue[0]?.at;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }
}
