// A time bound on what waits in a writer's batch (issue 14): the frames gathered in one buffer,
// each with the time it was queued and how much it may lose (a drop class: 0 never, 1 never,
// 2 small, 3 large; see @onionturn/protocol's DropClass, which the writer's classifier fills in).
// Pure: the clock is passed in, the bytes are the caller's buffer, compacted in place.
//
// The policy, kept simple (RFC 8289's CoDel, adapted to senders that may not respond to loss):
// - Nothing is dropped while the oldest frame has waited less than `target` (a third of the
//   budget, 50 ms by default): a small standing delay that WebRTC's delay-based estimator sees
//   and backs off from before it sees loss. A burst (a key frame) may pass above it briefly.
// - Like CoDel, a queue is only "standing" once the head's sojourn has stayed above target for
//   INTERVAL_MS (100 ms, CoDel's interval). Then large frames (video) older than target are
//   dropped from the head: the queue comes back to the target delay by shedding video first.
//   Unlike CoDel's one drop per interval/sqrt(n), which suits TCP senders that halve on a loss, a
//   client without congestion control (or one that has not reacted yet) needs the excess cut at
//   once, and a cut video frame is lost anyway.
// - Any droppable frame (small ones too: audio, other data) older than the budget is dropped:
//   the hard bound, whatever the state.
// - Classes 0 and 1 (our own control messages; relayed ICE checks, DTLS handshake, RTCP, the data
//   channel's small records) are never dropped.
// - One video frame is not shredded: after a dropped RTP packet, the frames right behind it with
//   the same SSRC and timestamp (the rest of that frame) go too, however young, rather than
//   sending a frame's tail that cannot be decoded.
// - And a video frame begun is finished: once some of its packets were written, the rest is kept
//   (up to FINISH_MS old) where it would have gone stale. On a path narrower than a key frame (a
//   congested relay: 80 kbit/s, a key frame of 10-20 kB) the cap lets a frame through a round
//   trip at a time, so its tail always outlived the budget: every key frame arrived cut, and the
//   call decoded nothing at all (0 frames a second where the by-hand path, which drops nothing,
//   showed 7). What waits behind the tail still goes stale as before.
// - A writer whose in-flight cap holds a video packet back moves the audio and the vital messages
//   (RTCP, the data channel's small records) behind it ahead (promoteUrgent), so audio does not go
//   stale behind video, nor does WebRTC's feedback wait on it; the queue is then no longer in time
//   order, and shed() looks at every frame's own age until it is written or empty.

/** Drop classes as the queue sees them (the numbers of @onionturn/protocol's DropClass). */
const VITAL = 1;
const SMALL = 2;
const LARGE = 3;
/** CoDel's interval: the head must stay above target this long before large frames go. */
export const INTERVAL_MS = 100;
/** A video frame begun is finished up to this old (ms; see the top of the file). */
export const FINISH_MS = 1000;
/** Written frames looked at (newest first) for the video frame begun. */
const BEGUN_LOOKBACK = 8;
/** Young frames looked at after the old ones for the rest of a dropped video frame (a frame is rarely more packets). */
const FRAME_LOOKAHEAD = 48;
/** The default budget (--max-queue-delay-ms). */
export const DEFAULT_MAX_QUEUE_DELAY_MS = 150;
/** Frames a queue has room for at its first push. */
const INITIAL_CAPACITY = 64;
/** Every queue's arrays before its first push (never written: the first push grows them). */
const NO_TIMES = new Float64Array(0);
const NO_NUMBERS = new Uint32Array(0);
const NO_BYTES = new Uint8Array(0);

/** Drops counted over many queues (one object shared by a server's or a shim's writers). */
export class QueueDrops {
  /** Frames dropped for having waited too long, and their bytes. */
  stale = 0;
  staleBytes = 0;
  /** Of those, large (video-sized) and small ones. */
  staleLarge = 0;
  staleSmall = 0;
}

export interface TimedQueueOptions {
  /** The budget: a droppable frame never waits longer (ms; > 0). */
  readonly maxDelayMs: number;
  /** Where drops are counted. */
  readonly drops: QueueDrops;
}

export class TimedQueue {
  readonly maxDelayMs: number;
  readonly targetMs: number;
  readonly #drops: QueueDrops;
  #count = 0;
  // Empty until the first push: every TCP client's writer has a queue, and almost none is ever
  // timed (only a batch behind a stuck write is); seven typed arrays each would cost every
  // connection seven buffers to allocate, sweep and free.
  #at = NO_TIMES;
  #offset = NO_NUMBERS;
  #length = NO_NUMBERS;
  #cls = NO_BYTES;
  /** RTP frames: 1 when ssrc/timestamp hold the packet's. */
  #rtp = NO_BYTES;
  #ssrc = NO_NUMBERS;
  #ts = NO_NUMBERS;
  /**
   * The last two video frames (SSRC, timestamp) some packets of which were written: their other
   * packets are kept (see the top of the file). -1: none.
   */
  #begunSsrc0 = -1;
  #begunTs0 = -1;
  #begunSsrc1 = -1;
  #begunTs1 = -1;
  /** When the head's sojourn went above target and stayed there, plus INTERVAL_MS; 0: below. */
  #standingAt = 0;
  /** The last shed() found the queue standing. */
  #standing = false;
  /** promoteUrgent() moved younger frames ahead of older ones: the head is not the oldest. */
  #reordered = false;
  /** The head frame is the tail of one partly written (see shift). */
  #partialHead = false;

  constructor(opts: TimedQueueOptions) {
    if (!(opts.maxDelayMs > 0)) throw new RangeError('maxDelayMs must be > 0');
    this.maxDelayMs = opts.maxDelayMs;
    this.targetMs = opts.maxDelayMs / 3;
    this.#drops = opts.drops;
  }

  /** Frames queued. */
  get count(): number {
    return this.#count;
  }

  /** When the oldest frame was queued (Infinity when empty). */
  get headAt(): number {
    return this.#count > 0 ? this.#oldest() : Infinity;
  }

  /** When the oldest frame was queued: the head's time, unless promoteUrgent() reordered (count > 0). */
  #oldest(): number {
    if (!this.#reordered) return this.#at[0] as number;
    let t = Infinity;
    for (let i = 0; i < this.#count; i++) t = Math.min(t, this.#at[i] as number);
    return t;
  }

  /** True while the head has stayed above target for an interval (large frames are being shed). */
  get standing(): boolean {
    return this.#standing;
  }

  /**
   * A frame of `length` bytes at `offset` in the caller's buffer (after the last one), queued at
   * `now`. `ssrc`/`timestamp` count when `rtp`.
   */
  push(now: number, offset: number, length: number, cls: number, rtp: boolean, ssrc: number, timestamp: number): void {
    const i = this.#count;
    if (i === this.#at.length) this.#grow();
    this.#at[i] = now;
    this.#offset[i] = offset;
    this.#length[i] = length;
    this.#cls[i] = cls;
    this.#rtp[i] = rtp ? 1 : 0;
    this.#ssrc[i] = ssrc;
    this.#ts[i] = timestamp;
    this.#count = i + 1;
  }

  /** Where frame `i` (0: the head) ends in the buffer. */
  frameEnd(i: number): number {
    return (this.#offset[i] as number) + (this.#length[i] as number);
  }

  /** Frame `i`'s drop class. */
  frameClass(i: number): number {
    return this.#cls[i] as number;
  }

  /** Is frame `i` a small RTP packet (audio, or a video frame's short last packet)? */
  smallMedia(i: number): boolean {
    return this.#rtp[i] === 1 && this.#cls[i] === SMALL;
  }

  /** Forgets every frame (the batch was written). */
  clear(): void {
    this.#written(this.#count);
    this.#count = 0;
    this.#reordered = false;
    this.#partialHead = false;
  }

  /** True when shed() at `now` could drop something: the cheap test a writer makes per frame. */
  due(now: number): boolean {
    return this.#count > 0 && now - this.#oldest() > this.targetMs;
  }

  /**
   * Drops what the policy says from `buf[0, end)` (which holds the queued frames, in order, and
   * nothing else) and moves the rest down; returns the new end.
   */
  shed(now: number, buf: Buffer, end: number): number {
    const n = this.#count;
    if (n === 0) return end;
    const target = this.targetMs;
    const reordered = this.#reordered;
    if (now - this.#oldest() <= target) {
      this.#standingAt = 0;
      this.#standing = false;
      return end;
    }
    if (this.#standingAt === 0) this.#standingAt = now + INTERVAL_MS;
    const standing = now >= this.#standingAt;
    this.#standing = standing;
    const budget = this.maxDelayMs;
    const drops = this.#drops;
    // The last two frames (SSRC, timestamp) dropped in this pass: their other packets go too.
    let lastSsrc0 = -1;
    let lastTs0 = -1;
    let lastSsrc1 = -1;
    let lastTs1 = -1;
    let young = 0;
    let write = 0;
    let kept = 0;
    let i = 0;
    for (; i < n; i++) {
      const age = now - (this.#at[i] as number);
      const cls = this.#cls[i] as number;
      const rtp = this.#rtp[i] === 1;
      let drop = false;
      if (cls >= SMALL) {
        if (age > budget || (standing && cls === LARGE && age > target)) drop = !(rtp && age <= FINISH_MS && this.#begun(i));
        else if (rtp) {
          const s = this.#ssrc[i] as number;
          const t = this.#ts[i] as number;
          drop = (s === lastSsrc0 && t === lastTs0) || (s === lastSsrc1 && t === lastTs1);
        }
      }
      // Past the old frames: the remainder stays as it is, but for the rest of a dropped video
      // frame among the next few (audio or RTCP may be interleaved with its packets).
      // (Behind frames promoteUrgent() moved ahead, older ones may follow young ones: all are looked at.)
      if (!drop && age <= target && !reordered && (lastSsrc0 === -1 || ++young > FRAME_LOOKAHEAD)) break;
      const off = this.#offset[i] as number;
      const len = this.#length[i] as number;
      if (drop) {
        drops.stale++;
        drops.staleBytes += len;
        if (cls === LARGE) drops.staleLarge++;
        else drops.staleSmall++;
        if (rtp) {
          const s = this.#ssrc[i] as number;
          const t = this.#ts[i] as number;
          if (!((s === lastSsrc0 && t === lastTs0) || (s === lastSsrc1 && t === lastTs1))) {
            lastSsrc1 = lastSsrc0;
            lastTs1 = lastTs0;
            lastSsrc0 = s;
            lastTs0 = t;
          }
        }
        continue;
      }
      if (off !== write) buf.copyWithin(write, off, off + len);
      this.#move(i, kept, write);
      write += len;
      kept++;
    }
    if (i === kept) {
      this.#settle(now);
      return end; // nothing dropped
    }
    // The untouched remainder moves down behind what was kept.
    if (i < n) {
      const from = this.#offset[i] as number;
      buf.copyWithin(write, from, end);
      const shift = from - write;
      for (let j = i; j < n; j++) this.#move(j, kept + j - i, (this.#offset[j] as number) - shift);
      write += end - from;
    }
    this.#count = kept + (n - i);
    this.#settle(now);
    return write;
  }

  /**
   * After a chunk of `bytes` from the start of the buffer was written: forgets the frames it held
   * whole and moves the offsets of the rest down. A chunk that ends inside a frame (a writer
   * filling whole Tor cells) leaves that frame's tail at the head: it is begun, so it is never
   * dropped (class 1) and must be written next, before anything else in the stream (partialHead).
   */
  shift(bytes: number): void {
    const n = this.#count;
    let i = 0;
    while (i < n && this.frameEnd(i) <= bytes) i++;
    const cut = i < n && (this.#offset[i] as number) < bytes;
    const tail = cut ? this.frameEnd(i) - bytes : 0;
    this.#written(cut ? i + 1 : i);
    for (let j = i; j < n; j++) this.#move(j, j - i, Math.max(0, (this.#offset[j] as number) - bytes));
    this.#count = n - i;
    if (cut) {
      this.#length[0] = tail;
      this.#cls[0] = VITAL;
    }
    this.#partialHead = cut;
    if (this.#count === 0) this.#reordered = false;
  }

  /** The head frame is the tail of one partly written (see shift). */
  get partialHead(): boolean {
    return this.#partialHead;
  }

  /**
   * Moves the small RTP frames (audio) and the vital ones (RTCP, ICE checks, the data channel's
   * small records) from the frame at byte `at` on (a writer's held part) ahead of the others there
   * (video), each group in its order, in `buf` (which holds the queued frames, in order) and here:
   * when a writer's cap holds a video frame back, the audio behind it goes first instead of going
   * stale behind it (video before audio is what a narrow path should lose), and so does WebRTC's
   * feedback (transport-cc, NACKs, receiver reports), which its congestion control and repair wait
   * for. An A/B on tor-congested (bench:call --compare, 16 calls each, taking turns) measured
   * RTCP round trips and freezes lower with RTCP moved too. A small RTP frame moves only when no
   * large frame of its own SSRC is ahead of it there, so no stream's own packets are reordered
   * (RTCP, STUN and DTLS records carry their own order). True when anything moved (never unless
   * the frame at `at` is a large one).
   */
  promoteUrgent(buf: Buffer, at: number): boolean {
    const n = this.#count;
    let from = 0;
    while (from < n && (this.#offset[from] as number) < at) from++;
    if (from >= n || this.#offset[from] !== at || this.#cls[from] !== LARGE) return false;
    // Which frames move: vital ones, and small RTP ones none of whose own stream's large frames are
    // ahead of them in the region (so no stream's packets change order). Rare: only behind a cap
    // that holds video back, over a few dozen frames; it may allocate.
    const moves = new Uint8Array(n - from);
    const largeSsrcs: number[] = [];
    let any = false;
    let stays = false;
    for (let i = from; i < n; i++) {
      const rtp = this.#rtp[i] === 1;
      const ssrc = this.#ssrc[i] as number;
      if (this.#cls[i] === LARGE) {
        if (rtp && !largeSsrcs.includes(ssrc)) largeSsrcs.push(ssrc);
        stays = true;
      } else if (this.#cls[i] === VITAL || (this.smallMedia(i) && !largeSsrcs.includes(ssrc))) {
        moves[i - from] = 1;
        any ||= stays;
      } else stays = true;
    }
    if (!any) return false;
    // The region's bytes and entries, copied, then written back in the new order.
    const start = this.#offset[from] as number;
    const end = this.frameEnd(n - 1);
    const bytes = Buffer.from(buf.subarray(start, end));
    const times = this.#at.slice(from, n);
    const offset = this.#offset.slice(from, n);
    const length = this.#length.slice(from, n);
    const cls = this.#cls.slice(from, n);
    const rtp = this.#rtp.slice(from, n);
    const ssrc = this.#ssrc.slice(from, n);
    const ts = this.#ts.slice(from, n);
    let to = from;
    let write = start;
    for (const pass of [1, 0]) {
      for (let k = 0; k < n - from; k++) {
        if (moves[k] !== pass) continue;
        const len = length[k] as number;
        bytes.copy(buf, write, (offset[k] as number) - start, (offset[k] as number) - start + len);
        this.#at[to] = times[k] as number;
        this.#offset[to] = write;
        this.#length[to] = len;
        this.#cls[to] = cls[k] as number;
        this.#rtp[to] = rtp[k] as number;
        this.#ssrc[to] = ssrc[k] as number;
        this.#ts[to] = ts[k] as number;
        to++;
        write += len;
      }
    }
    this.#reordered = true;
    return true;
  }

  /** The end of the longest run of whole frames from the start within `bytes` (at least the first frame). */
  prefixWithin(bytes: number): number {
    const n = this.#count;
    if (n === 0) return 0;
    let end = (this.#offset[0] as number) + (this.#length[0] as number);
    for (let i = 1; i < n; i++) {
      const e = (this.#offset[i] as number) + (this.#length[i] as number);
      if (e > bytes) break;
      end = e;
    }
    return end;
  }

  /** Frames [0, n) were written: the last video frame among them is begun. */
  #written(n: number): void {
    // Backwards from the newest, a few frames at most (this runs on every write): a batch that
    // carries video usually ends in the frame being sent.
    for (let i = n - 1, stop = Math.max(0, n - BEGUN_LOOKBACK); i >= stop; i--) {
      if (this.#rtp[i] !== 1 || this.#cls[i] !== LARGE) continue;
      const s = this.#ssrc[i] as number;
      const t = this.#ts[i] as number;
      if (s === this.#begunSsrc0 && t === this.#begunTs0) return;
      if (s !== this.#begunSsrc0) {
        this.#begunSsrc1 = this.#begunSsrc0;
        this.#begunTs1 = this.#begunTs0;
      }
      this.#begunSsrc0 = s;
      this.#begunTs0 = t;
      return;
    }
  }

  /** Frame `i` belongs to a video frame begun. */
  #begun(i: number): boolean {
    const s = this.#ssrc[i] as number;
    const t = this.#ts[i] as number;
    return (s === this.#begunSsrc0 && t === this.#begunTs0) || (s === this.#begunSsrc1 && t === this.#begunTs1);
  }

  /** The standing state after a pass: it ends once the head is back under target. */
  #settle(now: number): void {
    if (this.#count === 0) this.#reordered = false;
    if (this.#count === 0 || now - this.#oldest() <= this.targetMs) {
      this.#standingAt = 0;
      this.#standing = false;
    }
  }

  #move(from: number, to: number, offset: number): void {
    if (from !== to) {
      this.#at[to] = this.#at[from] as number;
      this.#length[to] = this.#length[from] as number;
      this.#cls[to] = this.#cls[from] as number;
      this.#rtp[to] = this.#rtp[from] as number;
      this.#ssrc[to] = this.#ssrc[from] as number;
      this.#ts[to] = this.#ts[from] as number;
    }
    this.#offset[to] = offset;
  }

  #grow(): void {
    const size = Math.max(INITIAL_CAPACITY, this.#at.length * 2);
    const grow = <T extends Float64Array | Uint32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(size);
      b.set(a);
      return b;
    };
    this.#at = grow(this.#at, (k) => new Float64Array(k));
    this.#offset = grow(this.#offset, (k) => new Uint32Array(k));
    this.#length = grow(this.#length, (k) => new Uint32Array(k));
    this.#cls = grow(this.#cls, (k) => new Uint8Array(k));
    this.#rtp = grow(this.#rtp, (k) => new Uint8Array(k));
    this.#ssrc = grow(this.#ssrc, (k) => new Uint32Array(k));
    this.#ts = grow(this.#ts, (k) => new Uint32Array(k));
  }
}
