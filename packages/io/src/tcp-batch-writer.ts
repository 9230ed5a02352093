// Write batching for a TCP (or TLS) socket on a relay path. Each socket.write() costs a trip
// through Node's stream machinery and a write(2) that also runs the loopback receiver's TCP stack
// (and, in front of tor, a partly empty relay cell per read). Relayed messages arrive one by one
// (a datagram, a peer's packet), in bursts that put several for the same stream into one event-
// loop turn. Those are copied into one buffer per socket and written once, when the turn's poll
// phase is over (setImmediate). A lone message is written at once: scheduling that flush costs
// about as much CPU as the write it saves, and a lone message gains nothing from waiting. So a
// socket batches from the second message that comes within BURST_GAP_MS of the last write, and
// goes back to direct writes after a turn in which it had only one message.
// Buffers are reused when the kernel took a write whole (the usual case): nothing is allocated per
// message. A bound on what waits (Node's queue plus the batch) makes a slow stream drop, as UDP
// would, instead of buffering without limit. While a write waits in Node's queue (the reader is
// slow), new messages gather in the batch until it has gone: each queued write would otherwise
// pin a whole pooled buffer for a few bytes, far beyond the bound, which counts bytes.
// With a time bound (TimeBound), each batched message also carries the time it was queued and a
// drop class, and a TimedQueue drops what waited too long before a write (and, behind a write
// stuck in Node's queue, as messages arrive). Behind such a write only chunks of WRITE_CHUNK go to
// the socket at a time, so what waits stays in the batch, where it can still be dropped, not in
// Node's queue, where it cannot.
// With a WriteGate (the delay extension's session, once a stream negotiated it), every batch is
// timed, and before a write the gate says how much of the batch's head may go (the in-flight
// cap): the rest stays batched, where the time bound drops what gets stale, until kick() (a
// report arrived, or the owner's report timer). Our own control messages are never held (nor is
// what is ahead of them), and vital relayed messages only behind held data (see #allowed; behind
// held video they go first, see below). The gate's due report goes ahead of the data in
// the same write (corked: one write(2), fuller cells), or alone when no data may go.
// Cells, not bytes, are what a narrow Tor path runs out of: tor puts what one read of the stream
// gives it into cells at once, so every lone write takes a 514-byte cell however small it is (an
// audio packet, an RTCP report: a call sends 50-100 of those a second per direction, several
// times what a congested relay gives a circuit). While the gate says the path is the limit, or
// the other direction queues (coalesceMs), a batch that would leave its last cell mostly empty
// waits for more, up to that long after its oldest message: a Nagle for cells. Our own control
// messages never wait. Only the last cell's bytes wait: the whole cells go at once, ending inside
// a message if need be (TCP is a byte stream; the receiver's framer joins the parts). Waiting
// whole batches, the cells of a call's sending shim on tor-congested were 67-70% full while the
// path was the limit; whole cells, 73%. The stream is then inside a message until its
// tail is written: the tail goes next whatever the cap says, and a due report goes behind it
// (TimedQueue.partialHead). Whole cells count what the write adds on the wire: the due report,
// and a TLS socket's record overhead.
// When the gate holds a video packet back, the audio packets and vital messages (RTCP) behind it
// go first (TimedQueue.promoteUrgent): on a path narrower than the call, audio is what should get
// through, and WebRTC's feedback should not wait on video.
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { TOR_CELL_PAYLOAD as CELL } from './inflight-cap.js';
import { TimedQueue, type QueueDrops } from './timed-queue.js';

/** Size of a pooled batch buffer; a bigger batch gets a one-off buffer. */
const BATCH_SIZE = 16 * 1024;
/**
 * A message this soon after the last write to the same socket starts batching. Within a turn the
 * messages of a burst come microseconds apart (hundreds with many streams interleaved); paced
 * traffic (audio every 10-20 ms) stays well above.
 */
export const BURST_GAP_MS = 1;
/**
 * Behind a write the kernel did not take whole, at most this much goes to the socket at once
 * (whole messages; about 8 Tor cells): Node's queue stays small, the rest waits where it can be dropped.
 */
export const WRITE_CHUNK = 4 * 1024;
const freeBatches: Buffer[] = [];

/** A time bound on the batch (see TimedQueue). */
export interface TimeBound {
  /** Budget in ms (> 0). */
  readonly maxDelayMs: number;
  /** Where drops are counted (shared by many writers). */
  readonly drops: QueueDrops;
  /**
   * Fills `out` with the drop class of the message at `buf[at, at + n)` (the caller knows its
   * framing; @onionturn/protocol's classifyFrame for TURN frames).
   */
  readonly classify: (buf: Buffer, at: number, n: number, out: MessageClass) => void;
}

/** What a classifier says about one message (@onionturn/protocol's FrameClass has this shape). */
export interface MessageClass {
  cls: number;
  rtp: boolean;
  ssrc: number;
  timestamp: number;
}

/** What a writer asks before writing relayed data (DelayFeedbackSession has this shape). */
export interface WriteGate {
  /** May a write of `bytes` go now? `vital`: it ends in vital relayed messages (a looser bound). */
  mayWrite(now: number, bytes: number, vital?: boolean): boolean;
  /** `bytes` were written (reports included). */
  onWrite(now: number, bytes: number): void;
  /** A report to write now ahead of any data, if one is due (never held); `alone`: with no data. */
  takeReport(now: number, alone?: boolean): Buffer | undefined;
  /** The bytes of the report takeReport(now) would give (0: none is due). */
  dueReportBytes(now: number): number;
  /** The gate began holding data back (for counting). */
  onHold(): void;
  /**
   * How long a batch that fills less than COALESCE_FILL of its last Tor cell may wait for more
   * (ms after its oldest message; 0: it goes at once). See the top of the file.
   */
  coalesceMs(now: number): number;
}

/**
 * A batch whose last cell is at least this full goes without waiting for more (what is left of
 * the cell's 498 bytes takes no audio packet of ~100-130 B any more). Against 360 (three
 * audio packets), with COALESCE_MS 80 against 40, on tor-congested in interleaved runs (18 calls
 * each): frames decoded +10% (p 0.02), freeze time -23% (p 0.05), RTT p95 and the data
 * channel's unchanged.
 */
export const COALESCE_FILL = 460;

/** Drop class of our own control messages (DropClass.Control): they are never held by a gate. */
const CONTROL = 0;
/**
 * Drop class of relayed ICE checks, DTLS handshake records, RTCP and the data channel's small
 * records (DropClass.Vital): held by a gate only beyond its looser bound, as audio is, while
 * nothing is held ahead of them (see #allowed).
 */
const VITAL = 1;

/** One reusable result for every writer's classifier (single-threaded, filled and read at once). */
const scratch: MessageClass = { cls: 0, rtp: false, ssrc: 0, timestamp: 0 };
const pending: TcpBatchWriter[] = [];
let flushScheduled = false;

function flushPending(): void {
  flushScheduled = false;
  for (let i = 0; i < pending.length; i++) (pending[i] as TcpBatchWriter).turnEnded();
  pending.length = 0;
}

/** The most of a batch of `len` bytes that fills whole Tor cells on the wire, a write adding `overhead`. */
function wholeCells(len: number, overhead: number): number {
  const cells = Math.floor((len + overhead) / CELL);
  return cells === 0 ? 0 : Math.max(0, cells * CELL - overhead);
}

export class TcpBatchWriter {
  readonly #sock: Socket;
  #maxQueued: number;
  readonly #burstGapMs: number;
  #batch: Buffer | undefined = undefined;
  #len = 0;
  /** Messages in the batch. */
  #count = 0;
  /** The open batch holds one message to be written by commit(), not at the end of the turn. */
  #direct = false;
  /** In a burst: messages wait for the end of the turn. */
  #batching = false;
  /** performance.now() of the last write. */
  #lastWrite = -Infinity;
  /** With a time bound: the batch's messages, their times and classes. */
  readonly #queue: TimedQueue | undefined;
  readonly #classify: TimeBound['classify'] | undefined;
  /** The last reserve(): where, how long, when (for the queue, at commit()). */
  #reservedAt = 0;
  #reservedLen = 0;
  #reservedTime = 0;
  /** The last write was not taken whole by the kernel: write in chunks from the batch. */
  #backedUp = false;
  /**
   * This batch's messages are timed (queued with their times and classes). Only a batch begun
   * behind a write that is stuck or not taken whole: any other is written whole at the end of its
   * turn, so timing it would cost every message a classification and a clock read for nothing.
   */
  #timed = false;
  /** A TLS record's bytes on the wire beyond its data (0 on plain TCP; see #overhead). */
  #tlsOverhead: number | undefined = undefined;
  /** The gate (see the top of the file); undefined on most writers: one branch per write. */
  #gate: WriteGate | undefined = undefined;
  /** The gate held back the batch's head: it waits for kick(). */
  #held = false;
  /** Bytes handed to the socket so far (the delay extension counts from the stream's start). */
  #written = 0;
  /** The batch waits to fill its last cell (see the top of the file); #timer ends the wait. */
  #coalescing = false;
  #timer: NodeJS.Timeout | undefined = undefined;
  /** When #timer ends the wait (head's time + coalesceMs): the same wait keeps its timer. */
  #timerDue = 0;
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (!this.#coalescing) return;
    this.#coalescing = false;
    if (!this.#direct && !this.#inFlight) this.#write();
  };
  /** A write handed to the socket is still in Node's queue; its callback writes what gathered. */
  #inFlight = false;
  readonly #afterWrite = (): void => {
    // Also called (next tick) for writes the kernel took at once: those leave a burst's batch to
    // the end of the turn. A callback that clears the flag while a later write still waits lets
    // one more write through; the queue stays a write or two deep.
    if (!this.#inFlight) return;
    this.#inFlight = false;
    if (!this.#direct) this.#write();
  };

  /**
   * `maxQueued`: bytes allowed to wait (unsent in Node plus batched) before messages are dropped.
   * `burstGapMs`: see BURST_GAP_MS (tests on a busy machine widen it).
   * `timeBound`: drop messages that waited too long (see TimedQueue); none: bytes only.
   */
  constructor(sock: Socket, maxQueued: number, burstGapMs: number = BURST_GAP_MS, timeBound?: TimeBound) {
    this.#sock = sock;
    this.#maxQueued = maxQueued;
    this.#burstGapMs = burstGapMs;
    if (timeBound !== undefined && timeBound.maxDelayMs > 0) {
      this.#queue = new TimedQueue({ maxDelayMs: timeBound.maxDelayMs, drops: timeBound.drops });
      this.#classify = timeBound.classify;
    }
  }

  /** Bytes handed to the socket so far. */
  get written(): number {
    return this.#written;
  }

  /** The gate consulted before each write (needs a time bound: without one it is ignored). */
  get gate(): WriteGate | undefined {
    return this.#gate;
  }

  set gate(g: WriteGate | undefined) {
    this.#gate = this.#queue === undefined ? undefined : g;
    if (this.#gate === undefined && this.#held) this.kick();
  }

  /** True while the gate holds batched data back. */
  get held(): boolean {
    return this.#held;
  }

  /**
   * With a gate: writes what it lets through now (a report arrived, or the owner's timer), and a
   * due report, alone if nothing else may go.
   */
  kick(): void {
    if (this.#direct) return; // between reserve() and commit()
    const gate = this.#gate;
    if (this.#batch !== undefined && !this.#inFlight) {
      this.#write();
      return;
    }
    if (this.#batch === undefined) this.#held = false;
    if (gate !== undefined) this.#loneReport(gate, performance.now());
  }

  /** The buffer reserve() last returned an offset in; write exactly the reserved bytes there. */
  get buffer(): Buffer {
    return this.#batch as Buffer;
  }

  /** The bound on waiting bytes (see the constructor); a server lowers it before a client has an allocation. */
  get maxQueued(): number {
    return this.#maxQueued;
  }

  set maxQueued(n: number) {
    this.#maxQueued = n;
  }

  /** Bytes waiting: in Node's queue plus batched. */
  get queued(): number {
    return this.#sock.writableLength + this.#len;
  }

  /** Bytes batched, not yet written. */
  get batched(): number {
    return this.#len;
  }

  /** True while messages wait for the end of the turn (a burst). */
  get batching(): boolean {
    return this.#batching;
  }

  /**
   * Room for a message of `n` bytes: its offset in `buffer`, or -1 when the socket is closed or
   * already behind by more than the bound (drop the message). Fill exactly those bytes, then call
   * commit().
   */
  reserve(n: number): number {
    const s = this.#sock;
    const q = this.#queue;
    let now = -1;
    // #timed describes the batch being gathered; with none, the next one decides below.
    if (this.#timed && this.#batch !== undefined) {
      now = performance.now();
      // Behind a stuck write, stale messages go as new ones come, not only when it drains.
      if ((this.#inFlight || this.#held) && !this.#direct && (q as TimedQueue).due(now)) {
        this.#len = (q as TimedQueue).shed(now, this.#batch, this.#len);
        this.#count = (q as TimedQueue).count;
      }
    }
    const at = this.#len;
    if (s.destroyed || s.writableEnded || s.writableLength + at + n > this.#maxQueued) return -1;
    let batch = this.#batch;
    if (batch === undefined) {
      // Close to the last write: a burst. Long after it, a lone message, even if the last turn
      // of the previous burst had several.
      if (now < 0) now = performance.now();
      this.#timed = q !== undefined && (this.#inFlight || this.#backedUp || this.#gate !== undefined);
      if (now - this.#lastWrite < this.#burstGapMs) this.#batching = true;
      else {
        this.#batching = false;
        this.#direct = true;
      }
      batch = n <= BATCH_SIZE ? (freeBatches.pop() ?? Buffer.allocUnsafe(BATCH_SIZE)) : Buffer.allocUnsafe(n);
      this.#batch = batch;
      if (!this.#direct) this.#schedule();
    } else if (batch.length - at < n) {
      const bigger = Buffer.allocUnsafe(Math.max(2 * batch.length, at + n));
      batch.copy(bigger, 0, 0, at);
      if (batch.length === BATCH_SIZE) freeBatches.push(batch);
      batch = bigger;
      this.#batch = batch;
    }
    this.#len = at + n;
    this.#count++;
    this.#reservedAt = at;
    this.#reservedLen = n;
    this.#reservedTime = now;
    return at;
  }

  /** The reserved bytes are filled: a lone message is written now, one of a burst at the turn's end. */
  commit(): void {
    const q = this.#queue;
    if (this.#timed && q !== undefined) {
      const at = this.#reservedAt;
      const n = this.#reservedLen;
      (this.#classify as TimeBound['classify'])(this.#batch as Buffer, at, n, scratch);
      q.push(this.#reservedTime, at, n, scratch.cls, scratch.rtp, scratch.ssrc, scratch.timestamp);
      // Our own control message behind data the gate holds: it is not held (see #allowed).
      if (this.#held && scratch.cls === CONTROL && !this.#direct) this.#schedule();
      // A batch waiting to fill its last cell: full enough now, or a whole cell and more (whose
      // whole cells go), or our own control message: it goes at the end of the turn, with
      // whatever else the turn brings. (Both are "this much on the wire".)
      else if (this.#coalescing && (scratch.cls === CONTROL || this.#len + this.#overhead(this.#reservedTime) >= COALESCE_FILL)) {
        this.#coalescing = false;
        this.#schedule();
      }
    }
    if (!this.#direct) return;
    this.#direct = false;
    this.#write();
  }

  /** Copies `data[0, end)` followed by `pad` zero bytes as one message; false when dropped (see reserve). */
  append(data: Buffer, end: number = data.length, pad = 0): boolean {
    const at = this.reserve(end + pad);
    if (at < 0) return false;
    const batch = this.#batch as Buffer;
    data.copy(batch, at, 0, end);
    if (pad > 0) batch.fill(0, at + end, at + end + pad);
    this.commit();
    return true;
  }

  /** The end of the turn a burst was batched in: write it (or keep gathering behind a queued write). */
  turnEnded(): void {
    if (this.#direct) return; // between reserve() and commit(): the caller is still filling it
    // A turn with a single message: the burst is over.
    if (this.#count <= 1) this.#batching = false;
    this.#write();
  }

  /** Writes what is batched now, also behind a queued write: for a caller about to end the socket. */
  flush(): void {
    if (this.#direct) return;
    this.#write(true);
  }

  #schedule(): void {
    pending.push(this);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushPending);
    }
  }

  /** `force`: write even behind a queued write (flush() before the socket ends). */
  #write(force = false): void {
    const batch = this.#batch;
    if (batch === undefined) return;
    const s = this.#sock;
    // Gather behind the write in Node's queue (see the top of the file), unless the socket ends.
    if (this.#inFlight && !force && !s.destroyed) return;
    let len = this.#len;
    const q = this.#queue;
    const now = performance.now();
    if (this.#timed && q !== undefined && !s.destroyed && !s.writableEnded) {
      len = q.shed(now, batch, len);
      if (len === 0) {
        // All of it was stale.
        this.#batch = undefined;
        this.#len = 0;
        this.#count = 0;
        this.#held = false;
        q.clear();
        if (batch.length === BATCH_SIZE) freeBatches.push(batch);
        return;
      }
      const gate = this.#gate;
      if (gate !== undefined && !force) {
        let allowed = this.#allowed(gate, q, now);
        // Video held back with audio or RTCP behind it: they go first (see TimedQueue.promoteUrgent).
        if (allowed < len && q.promoteUrgent(batch, allowed)) allowed = this.#allowed(gate, q, now);
        // What may go would leave its last cell mostly empty: its whole cells go now, the last
        // one's bytes wait for more (see the top of the file).
        let head = allowed;
        if (allowed > 0) {
          // Looked up only when something may go (the due report's size is a question to the gate).
          const overhead = this.#overhead(now);
          if (this.#waitForMore(gate, q, allowed, now, overhead)) head = wholeCells(allowed, overhead);
        }
        // Never a write that ends inside a message's tail (the report would go inside it).
        if (q.partialHead && head > 0) head = Math.max(head, q.frameEnd(0));
        if (head < len) {
          if (allowed < len) {
            if (!this.#held) gate.onHold();
            this.#held = true;
          } else this.#held = false;
          if (head === 0) {
            this.#len = len;
            this.#count = q.count;
            if (allowed === 0) this.#loneReport(gate, now);
            return;
          }
          this.#writeChunk(batch, head, len, now);
          return;
        }
        this.#held = false;
      }
      if (this.#backedUp && !force && len > WRITE_CHUNK) {
        const head = q.prefixWithin(WRITE_CHUNK);
        if (head < len) {
          this.#writeChunk(batch, head, len, now);
          return;
        }
      }
    }
    const tail = q !== undefined && q.partialHead ? q.frameEnd(0) : 0;
    q?.clear();
    this.#batch = undefined;
    this.#len = 0;
    this.#count = 0;
    if (s.destroyed || s.writableEnded) return;
    this.#lastWrite = now;
    this.#sockWrite(len === batch.length ? batch : batch.subarray(0, len), now, tail);
    // Nothing left in Node's queue: the kernel (or the TLS engine) took it whole, so the buffer is
    // free again. Otherwise the socket holds it until the write's callback, and it is left to
    // the GC.
    if (s.writableLength === 0) {
      this.#backedUp = false;
      if (batch.length === BATCH_SIZE) freeBatches.push(batch);
    } else {
      this.#backedUp = true;
      this.#inFlight = true;
    }
  }

  /**
   * Should the batch `[0, len)` wait to fill its last cell (see the top of the file)? If so, the
   * timer is set for the rest of the wait.
   */
  #waitForMore(gate: WriteGate, q: TimedQueue, len: number, now: number, overhead: number): boolean {
    this.#coalescing = false;
    const fill = (len + overhead) % CELL;
    if (fill === 0 || fill >= COALESCE_FILL) return false;
    const ms = gate.coalesceMs(now);
    if (ms <= 0) return false;
    // Timers fire late, never early by more than a rounding: within 1 ms is due.
    const left = q.headAt + ms - now;
    if (left <= 1) return false;
    for (let i = 0; i < q.count; i++) if (q.frameClass(i) === CONTROL) return false;
    this.#coalescing = true;
    // Each message that joins a waiting batch asks again: no new timer for the same wait.
    const due = q.headAt + ms;
    if (this.#timer !== undefined) {
      if (this.#timerDue === due) return true;
      clearTimeout(this.#timer);
    }
    this.#timerDue = due;
    this.#timer = setTimeout(this.#onTimer, Math.ceil(left));
    this.#timer.unref();
    return true;
  }

  /**
   * One write of `data` to the socket, after the gate's due report if there is one; `tail`: data
   * begins with the last `tail` bytes of a message partly written before, which the report goes
   * behind (inside a message it would break the stream's framing; #write never ends a write
   * inside such a tail).
   */
  #sockWrite(data: Buffer, now: number, tail = 0): void {
    const s = this.#sock;
    const gate = this.#gate;
    if (gate === undefined) {
      this.#written += data.length;
      s.write(data, this.#afterWrite);
      return;
    }
    const report = gate.takeReport(now);
    if (report === undefined) {
      s.write(data, this.#afterWrite);
      gate.onWrite(now, data.length);
      this.#written += data.length;
      return;
    }
    s.cork();
    if (tail > 0) s.write(data.subarray(0, tail));
    s.write(report);
    s.write(tail > 0 ? data.subarray(tail) : data, this.#afterWrite);
    s.uncork();
    gate.onWrite(now, report.length + data.length);
    this.#written += report.length + data.length;
  }

  /**
   * Bytes a write adds to the batch's on the wire: the gate's due report, and on a TLS socket the
   * record's overhead (TLS 1.3: a 5-byte header, the content type, a 16-byte tag; TLS 1.2 with
   * GCM: 29 bytes), looked up once the handshake has told the protocol.
   */
  #overhead(now: number): number {
    let tls = this.#tlsOverhead;
    if (tls === undefined) {
      const s = this.#sock as Socket & { encrypted?: boolean; getProtocol?: () => string | null };
      const protocol = s.encrypted === true ? (s.getProtocol?.() ?? null) : 'none';
      tls = protocol === 'none' ? 0 : protocol === 'TLSv1.3' ? 22 : 29;
      if (protocol !== null) this.#tlsOverhead = tls; // null: the handshake is not done yet
    }
    return tls + (this.#gate?.dueReportBytes(now) ?? 0);
  }

  /** The gate's due report, alone (nothing else may go, or nothing waits). */
  #loneReport(gate: WriteGate, now: number): void {
    const s = this.#sock;
    if (s.destroyed || s.writableEnded) return;
    // The stream is inside a message whose tail waits (behind a queued write): not now.
    if (this.#queue?.partialHead === true && this.#batch !== undefined) return;
    const report = gate.takeReport(now, true);
    if (report === undefined) return;
    s.write(report);
    gate.onWrite(now, report.length);
    this.#written += report.length;
  }

  /**
   * The bytes at the batch's head the gate lets go now: whole frames. A control message of ours
   * (an answer to a request) is not held: it goes with what is ahead of it (rare: requests come
   * every few minutes), rather than being reordered.
   */
  #allowed(gate: WriteGate, q: TimedQueue, now: number): number {
    const n = q.count;
    let allowed = 0;
    let i = 0;
    for (; i < n; i++) {
      const end = q.frameEnd(i);
      // A vital message at the head goes within a looser bound: a call's setup is nothing but
      // these (ICE checks, the DTLS handshake), a few hundred bytes a round trip, and the cap sized
      // from them (the app's own trickle) on a path that someone else's traffic keeps queued would
      // hold each flight a round trip or more, over and over as the app retransmits. Without any
      // bound, a call's RTCP (10-20 packets a second per direction, a cell each) went on into a
      // path that delivered less than that, and its queue grew to seconds (tor-congested). Media
      // ahead of one holds it. Audio (small RTP packets, sent ahead of held video) takes the
      // looser bound too: held to one cap with the video, it went stale at the time bound more
      // often than the video did (tor-congested: 242 small stale drops to 91 large in a call),
      // against the order of loss (video first).
      const cls = q.frameClass(i);
      // The tail of a message partly written goes whatever the cap says: the stream is inside it.
      if (cls !== CONTROL && !(i === 0 && q.partialHead) && !gate.mayWrite(now, end, cls === VITAL || q.smallMedia(i))) break;
      allowed = end;
    }
    for (let j = n - 1; j >= i; j--) {
      if (q.frameClass(j) === CONTROL) return q.frameEnd(j);
    }
    return allowed;
  }

  /**
   * Behind a backed-up socket: writes `batch[0, head)` and keeps `batch[head, len)` batched (in a
   * buffer of its own: the socket holds the written one), where it can still be dropped.
   */
  #writeChunk(batch: Buffer, head: number, len: number, now: number): void {
    const s = this.#sock;
    const q = this.#queue as TimedQueue;
    const rest = len - head;
    const next = rest <= BATCH_SIZE ? (freeBatches.pop() ?? Buffer.allocUnsafe(BATCH_SIZE)) : Buffer.allocUnsafe(rest);
    batch.copy(next, 0, head, len);
    const tail = q.partialHead ? q.frameEnd(0) : 0;
    q.shift(head);
    this.#batch = next;
    this.#len = rest;
    this.#count = q.count;
    this.#lastWrite = now;
    this.#sockWrite(batch.subarray(0, head), now, tail);
    if (s.writableLength === 0) {
      // The kernel had room after all: the rest goes now too (its own write, as before).
      this.#backedUp = false;
      if (batch.length === BATCH_SIZE) freeBatches.push(batch);
      this.#write();
    } else {
      this.#inFlight = true;
      // The rest was batched by no reserve() of this turn: nothing else schedules it but the
      // write's callback, which is what should write it.
    }
  }
}
