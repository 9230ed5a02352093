// The sender's half of the shim<->server delay extension (issue 14, deliverable 3, on the
// wire through DelayFeedbackSession): cap what is in flight inside Tor at about rate x (base round trip + target), so the
// queue builds in our writer (where TimedQueue can drop what is stale) instead of in Tor's circuit
// queues and kernel buffers (where nothing can). Pure: the clock is passed in.
//
// Inputs: every write to the stream (bytes; counted in Tor cells: a write of n bytes takes
// ceil(n / 498) cells, so a lone 120-byte packet costs a whole cell), and the receiver's reports
// (every ~50 ms: total bytes received so far, and the one-way delay of the newest message, in its
// own clock: only differences of it mean anything). From them:
// - delivery rate: cells acknowledged per second between reports, the max over the last second
//   (a windowed max, as BBR's bottleneck estimate: a report that saw little to deliver does not
//   lower it);
// - base round trip: write to acknowledgement of the same bytes, the min over the last 60 s;
// - forward queue delay: the one-way delay minus its min over the last 60 s.
// A stream keeps its circuit, so its base hardly changes; the long window keeps the base from
// taking in a queue of our own that stood longer than the window (behind a cap a little too
// large the base grew, the cap with it, and the queue with that: seconds within a minute on an
// 80 kbit/s path), or the backlog a long stall leaves (then every sample in the window is late).
// cap = rate x (base + target) cells (rate at least MIN_RATE_CELLS), at least MIN_CELLS; while the
// forward queue delay is above target (the path got slower than the estimate), cap = rate x base
// (drain) until it is back. Before the first reports: INITIAL_CELLS. The rate is the last second's,
// but for an app-limited sender (below) the best of the last BEST_RATE_WINDOW_MS: nothing is
// delivered faster than the path carries, and an app's own rate over a second swings (a video
// call's by 4x between the acknowledgements of a key frame and the delta frames after it), so a
// cap sized from the last second's shrank just before the next key frame, refused it, and held it
// until stale on a path with room. A sender the path limits keeps the last second's: its share of
// a contended path changes as the other flows do.
//
// A queue that is not ours: a relay whose other circuits keep seconds of cells queued ahead of
// ours (a bulk download on a congested relay; tor's own congestion control keeps such a queue)
// delays our cells whatever we send, and draining cannot empty it: a cap at rate x base then
// refuses nearly everything, the writer drops it as stale, the app backs off, the rate measured
// falls, and the call starves (0 frames a second on the tor-congested profile). Our own queue
// drains within a round trip or two once the cap holds back; so taken as another flow's, beyond
// our reach, are the least queue delay of the last three base round trips (2 to 10 s) less the
// target (where the cap keeps ours), and a queue delay longer than the cells in flight when the
// delayed bytes were written would take to drain at the best rate of the last 10 s (such a queue
// swings by seconds as the other flow's does, with no floor that stands). Not the cells in flight
// now: a report shows the delay of bytes written a queue ago, and a burst of our own, nearly all
// acknowledged when its last bytes showed 2 s of delay, passed for another flow's. The first in
// full only while the cap refused nothing in that window: a sender the cap holds back keeps a queue of its own standing for as long as it offers
// more, and taking all of that for another flow's grew the cap, and the queue, without end (20 s
// within a minute). While it refuses, at most REFUSING_CREDIT_MS of it: a drop-tail router that
// a bulk download keeps full (200 ms per crossing, two crossings a direction on tor-congested)
// stands whatever we send, and without any credit the cap drained a call into it to 8 cells a
// round trip (10 cells a second, a fifth of its audio). The cap allows
// that on top of base (the queue it drains and its target are measured above it). The bound on
// delay then comes from the writer's time bound (what the path cannot take in time is dropped
// there) and from the app's own congestion control, which sees the delay.
//
// App-limited senders: a call sends far less than the path carries, so the delivery rate measures
// the app, not the path, and a cap built on it is too small for the app's own bursts (a video key
// frame is tens of cells at once). Held back behind a cap like that, a burst's tail waits for
// acknowledgements a round trip away, longer than the time bound: it is dropped on a path with
// room (a quarter of a video call's bytes in the test's simulation). The cap exists to bound a
// standing queue, not a burst into an empty path, so while it has not refused a write for
// RATE_WINDOW_MS and the path shows no standing queue above target (the least of the last
// second's reports), it is APP_LIMITED_GAIN times the cap its best rate gives, and at least
// BURST_CELLS. (The gain is BBR's cwnd gain, for the same reason: on a long path the app's own
// rate times the round trip is what it keeps in flight all the time, so a cap of about that was
// full whenever a key frame came or a link stalled for a few hundred ms: on tor-onion's 1.1-s
// call round trip, 128 cells held 30-60 video packets a call until they went stale.) Once it
// refuses (the sender offers more than the cap), the rate it then measures is the path's, and it
// holds strictly.

/** Bytes of relay payload in one Tor cell (RELAY_PAYLOAD_SIZE). */
export const TOR_CELL_PAYLOAD = 498;
export const INITIAL_CELLS = 64;
export const MIN_CELLS = 8;
/** The cap of an app-limited sender on a path with no queue (tor's own initial circuit window is 124 cells). */
export const BURST_CELLS = 128;
/** An app-limited sender's cap is this many times what its measured rate gives (see the top of the file). */
export const APP_LIMITED_GAIN = 2;
/**
 * The cap sizes itself from at least this delivery rate (cells/s: 16 x 498 B, ~64 kbit/s). A rate
 * measured from an app's own trickle (a call's setup: ICE, DTLS, the data channel's handshake) on
 * a path with a round trip of seconds (a relay another flow keeps queued) made a cap of a few cells
 * per round trip: every flight beyond it waited a round trip, was dropped as stale, and was sent
 * again by the app, later each time. Below a second of round trip the floor is under MIN_CELLS.
 */
export const MIN_RATE_CELLS = 16;
const RATE_WINDOW_MS = 1000;
const BASE_WINDOW_MS = 60_000;
const BEST_RATE_WINDOW_MS = 10_000;
/**
 * A queue delay that stood this long while the cap refused nothing is another flow's (see the top of the file):
 * STANDING_RTTS base round trips (our own queue drains in one or two once the cap holds back), at
 * least STANDING_MIN_MS, at most STANDING_WINDOW_MS.
 */
export const STANDING_WINDOW_MS = 10_000;
export const STANDING_MIN_MS = 2000;
/** Vital messages may fill this many caps (see mayWrite). */
export const VITAL_CAPS = 2;
/** The most of a standing queue taken for another flow's while the cap refuses (ms; see the top of the file). */
export const REFUSING_CREDIT_MS = 400;
const STANDING_RTTS = 3;

export interface InflightCapOptions {
  /** Queue delay allowed on top of the base round trip, ms (default 50). */
  readonly targetMs?: number;
  /**
   * A delivery rate sample spans at least this long (ms; default 0: every report is one). Tor's
   * relays deliver in bursts (their token buckets refill every ~100 ms) and reports can arrive
   * bunched (behind a stall): a sample over a few ms of either is no rate at all.
   */
  readonly rateSpanMs?: number;
  /**
   * Added to the base round trip in the cap: how long an acknowledgement may wait for the next
   * report (ms; default 0). With reports every 50 ms, bytes stay "in flight" that long after
   * they arrived.
   */
  readonly ackDelayMs?: number;
}

/** A value with the time it was seen, for windowed min/max. */
interface Sample {
  at: number;
  v: number;
}

/** Keeps the min (or max) over a sliding window: a monotonic deque. */
export class WindowedExtreme {
  readonly #keep: (older: number, newer: number) => boolean;
  readonly #windowMs: number;
  #q: Sample[] = [];
  constructor(windowMs: number, kind: 'min' | 'max') {
    this.#windowMs = windowMs;
    // An older sample worse than a newer one can never be the extreme again.
    this.#keep = kind === 'min' ? (older, newer) => older < newer : (older, newer) => older > newer;
  }
  add(at: number, v: number): void {
    const q = this.#q;
    while (q.length > 0 && !this.#keep((q[q.length - 1] as Sample).v, v)) q.pop();
    q.push({ at, v });
    this.#expire(at);
  }
  value(now: number): number | undefined {
    this.#expire(now);
    return this.#q[0]?.v;
  }
  /**
   * The extreme over the last `windowMs` only (at most the window's own; undefined when no sample
   * is that recent). A sample left in the deque is the extreme of everything since the one before
   * it, so the first one that recent is the answer.
   */
  valueOver(now: number, windowMs: number): number | undefined {
    this.#expire(now);
    const q = this.#q;
    // Indexed: this runs on every gated write, and an iterator would be an allocation each time.
    for (let i = 0; i < q.length; i++) if (now - (q[i] as Sample).at <= windowMs) return (q[i] as Sample).v;
    return undefined;
  }
  #expire(now: number): void {
    const q = this.#q;
    while (q.length > 1 && now - (q[0] as Sample).at > this.#windowMs) q.shift();
  }
}

/** A write not yet acknowledged: cumulative bytes and cells after it, when, and the cells in flight then (itself included). */
interface SentWrite {
  bytes: number;
  cells: number;
  at: number;
  ahead: number;
}

export class InflightCap {
  readonly targetMs: number;
  #writes: SentWrite[] = [];
  /** Cells in flight when the newest acknowledged write went (itself included): what it queued behind. */
  #aheadOfAcked = 0;
  #sentBytes = 0;
  #sentCells = 0;
  #ackedBytes = 0;
  #ackedCells = 0;
  #lastReportAt: number | undefined = undefined;
  readonly #rate = new WindowedExtreme(RATE_WINDOW_MS, 'max');
  /** The best delivery rate of the last BEST_RATE_WINDOW_MS: how fast the path drained what we had in it. */
  readonly #bestRate = new WindowedExtreme(BEST_RATE_WINDOW_MS, 'max');
  readonly #baseRtt = new WindowedExtreme(BASE_WINDOW_MS, 'min');
  readonly #baseOwd = new WindowedExtreme(BASE_WINDOW_MS, 'min');
  #queueDelay = 0;
  /**
   * The least queue delay over STANDING_WINDOW_MS: a queue not ours; over the last RATE_WINDOW_MS
   * (valueOver), above target only when a queue stands.
   */
  readonly #foreign = new WindowedExtreme(STANDING_WINDOW_MS, 'min');
  readonly #rateSpanMs: number;
  readonly #ackDelayMs: number;
  /** The current rate sample's start: when (the reporter's clock when it gives one) and cells acknowledged then. */
  #spanAt: number | undefined = undefined;
  #spanCells = 0;
  /** When the cap last refused a write. */
  #refusedAt = -Infinity;

  constructor(opts: InflightCapOptions = {}) {
    this.targetMs = opts.targetMs ?? 50;
    this.#rateSpanMs = opts.rateSpanMs ?? 0;
    this.#ackDelayMs = opts.ackDelayMs ?? 0;
  }

  /** Cells a write of `bytes` takes. */
  static cells(bytes: number): number {
    return Math.ceil(bytes / TOR_CELL_PAYLOAD);
  }

  /** A write of `bytes` went into the stream at `now`. */
  onWrite(now: number, bytes: number): void {
    this.#sentBytes += bytes;
    this.#sentCells += InflightCap.cells(bytes);
    this.#writes.push({ bytes: this.#sentBytes, cells: this.#sentCells, at: now, ahead: this.#sentCells - this.#ackedCells });
  }

  /**
   * A receiver's report arrived at `now`: `receivedBytes` in total so far, and `oneWayDelayMs`
   * of its newest message (receiver's clock minus the sender's timestamp; any offset; undefined
   * while the receiver has none).
   * `reporterClockMs`: the receiver's clock when it wrote the report (ms, modulo 2^32): rate
   * samples are timed by it when given (what the receiver saw, whatever bunched the reports on
   * their way back).
   */
  onReport(now: number, receivedBytes: number, oneWayDelayMs: number | undefined, reporterClockMs?: number): void {
    if (receivedBytes > this.#sentBytes || receivedBytes < this.#ackedBytes) return; // stale or bogus
    const before = this.#ackedCells;
    const w = this.#writes;
    let i = 0;
    while (i < w.length && (w[i] as SentWrite).bytes <= receivedBytes) i++;
    if (i > 0) {
      const last = w[i - 1] as SentWrite;
      this.#ackedCells = last.cells;
      this.#aheadOfAcked = last.ahead;
      this.#baseRtt.add(now, now - last.at);
      w.splice(0, i);
    }
    this.#ackedBytes = receivedBytes;
    if (this.#rateSpanMs === 0) {
      if (this.#lastReportAt !== undefined && now > this.#lastReportAt) {
        this.#addRate(now, ((this.#ackedCells - before) * 1000) / (now - this.#lastReportAt));
      }
    } else {
      const at = reporterClockMs ?? now;
      if (this.#spanAt === undefined) {
        // The first report starts the first sample: what it acknowledged was delivered before it.
        this.#spanAt = at;
        this.#spanCells = this.#ackedCells;
      }
      const span = reporterClockMs === undefined ? at - this.#spanAt : (at - this.#spanAt) | 0;
      if (span >= this.#rateSpanMs) {
        this.#addRate(now, ((this.#ackedCells - this.#spanCells) * 1000) / span);
        this.#spanAt = at;
        this.#spanCells = this.#ackedCells;
      } else if (span < 0) this.#spanAt = at; // a reporter's clock that went back: start over
    }
    this.#lastReportAt = now;
    if (oneWayDelayMs === undefined) return; // the receiver had no clock of ours yet
    this.#baseOwd.add(now, oneWayDelayMs);
    this.#queueDelay = oneWayDelayMs - (this.#baseOwd.value(now) as number);
    this.#foreign.add(now, this.#queueDelay);
  }

  #addRate(now: number, cellsPerS: number): void {
    this.#rate.add(now, cellsPerS);
    this.#bestRate.add(now, cellsPerS);
  }

  /** Cells and bytes written so far. */
  get sentCells(): number {
    return this.#sentCells;
  }

  get sentBytes(): number {
    return this.#sentBytes;
  }

  /** Cells written and not yet acknowledged. */
  get inflightCells(): number {
    return this.#sentCells - this.#ackedCells;
  }

  /** The forward queue delay the last report showed, ms. */
  get queueDelayMs(): number {
    return this.#queueDelay;
  }

  /** Delivery rate estimate, cells/s (undefined before two reports). */
  rate(now: number): number | undefined {
    return this.#rate.value(now);
  }

  /** The best delivery rate of the last BEST_RATE_WINDOW_MS, cells/s (an app-limited sender's cap uses it). */
  bestRate(now: number): number | undefined {
    return this.#bestRate.value(now);
  }

  /** Base round trip estimate, ms (undefined before an acknowledgement). */
  baseRttMs(now: number): number | undefined {
    return this.#baseRtt.value(now);
  }

  /** The cap on cells in flight now. */
  capCells(now: number): number {
    const base = this.#baseRtt.value(now);
    const foreign = this.foreignQueueMs(now);
    const appLimited = this.#appLimited(now, foreign);
    // App-limited: the best rate of the last BEST_RATE_WINDOW_MS (see the top of the file).
    const rate = (appLimited ? this.#bestRate : this.#rate).value(now);
    if (rate === undefined || base === undefined) return INITIAL_CELLS;
    const allowance = base + foreign + (this.#queueDelay - foreign > this.targetMs ? 0 : this.targetMs) + this.#ackDelayMs;
    const cells = Math.max(MIN_CELLS, Math.floor((Math.max(rate, MIN_RATE_CELLS) * allowance) / 1000));
    return appLimited ? Math.max(APP_LIMITED_GAIN * cells, BURST_CELLS) : cells;
  }

  /**
   * Sending less than the cap allows, on a path with no standing queue above target (see the top
   * of the file). Standing: the least queue delay over the last RATE_WINDOW_MS, not the last
   * report's: a path of six relays jitters by more than the target with no queue at all.
   */
  appLimited(now: number): boolean {
    return this.#appLimited(now, this.foreignQueueMs(now));
  }

  /**
   * The path is the limit: the cap refused a write within the last RATE_WINDOW_MS, or a queue
   * stood above target all that time (ours or another flow's: a relay someone else keeps queued
   * is as short of cells for us).
   */
  pathLimited(now: number): boolean {
    return this.#refusedRecently(now) || this.#standingMs(now) > this.targetMs;
  }

  /** appLimited with the foreign queue already known (capCells has it: one lookup per write). */
  #appLimited(now: number, foreign: number): boolean {
    return !this.#refusedRecently(now) && this.#standingMs(now) - foreign <= this.targetMs;
  }

  #refusedRecently(now: number): boolean {
    return now - this.#refusedAt <= RATE_WINDOW_MS;
  }

  /** The least queue delay over the last RATE_WINDOW_MS: what stood all that time. */
  #standingMs(now: number): number {
    return this.#foreign.valueOver(now, RATE_WINDOW_MS) ?? 0;
  }

  /**
   * The queue delay that stood over the last few round trips (another flow's), ms, less the
   * target: our own queue stands within the target (the cap lets it), and crediting that would
   * let it creep up by a target every window.
   */
  foreignQueueMs(now: number): number {
    const base = this.#baseRtt.value(now);
    if (base === undefined) return 0;
    const window = Math.min(STANDING_WINDOW_MS, Math.max(STANDING_MIN_MS, STANDING_RTTS * base));
    // While the cap refuses, part of what stood may be our own queue: no more than
    // REFUSING_CREDIT_MS of it is taken for another flow's (see the top of the file).
    const stood = (this.#foreign.valueOver(now, window) ?? 0) - this.targetMs;
    const credit = now - this.#refusedAt <= window ? Math.min(stood, REFUSING_CREDIT_MS) : stood;
    // What our own cells cannot explain: at the best rate the path showed, those in flight when the
    // newest acknowledged bytes were written (what they queued behind) would be through in this
    // long (their base round trip included, so it errs towards "ours").
    const best = this.#bestRate.value(now);
    const ours = best === undefined || best <= 0 ? Infinity : (this.#aheadOfAcked * 1000) / best;
    return Math.max(0, credit, this.#queueDelay - ours);
  }

  /** Would a write of `bytes` stay within `caps` times the cap? (Always with nothing in flight.) */
  fits(now: number, bytes: number, caps = 1): boolean {
    const inflight = this.inflightCells;
    return inflight === 0 || inflight + InflightCap.cells(bytes) <= caps * this.capCells(now);
  }

  /**
   * May a write of `bytes` go into the stream now? (Always with nothing in flight: a write bigger
   * than the cap still goes, alone.) `vital`: it ends in vital messages (ICE checks, DTLS
   * handshake, RTCP, the data channel's small records) or audio, which may fill VITAL_CAPS caps: a
   * call's setup goes on at once, RTCP beyond what the path delivers does not.
   */
  mayWrite(now: number, bytes: number, vital = false): boolean {
    if (this.fits(now, bytes, vital ? VITAL_CAPS : 1)) return true;
    this.#refusedAt = now;
    return false;
  }
}
