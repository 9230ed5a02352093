// One end's state of the shim<->server delay extension (issue 14, deliverable 3), the same object
// on both ends: the server's writer towards a negotiated client and the shim's writer towards Tor.
// Pure: time is passed in (the stale-on-arrival test reads the injected clock), reports are
// encoded by the caller's function (this package knows no protocol).
//
// Inputs: bytes written to the stream (all of them, from its first byte: the other end
// acknowledges totals), bytes read from it, the other end's reports, negotiation.
// Outputs: whether a write of relayed data may go now (InflightCap, once negotiated), the report to
// put into the next write (every REPORT_INTERVAL_MS while data flowed either way in the last
// ACTIVE_MS; none while idle: reports themselves are not activity), and whether relayed data
// arriving now is stale (see late()).
//
// Stale on arrival: every report carries the other end's clock when it was written, so its
// arrival here minus that clock is the one-way delay plus an unknown offset; minus its min over
// BASE_WINDOW_MS it is the queueing delay of that direction. Relayed data right behind a report
// in the stream was written after it, so it is at least about as late: while the newest report
// showed more than `staleMs` and LATE_MIN_MS of queueing (and it is fresh: LATE_HOLD_MS), small media and data
// are dropped on arrival (@onionturn/protocol's droppableOnArrival: video is not). On an
// uncongested path the excess stays near 0 and nothing is dropped.
// Queueing is measured above what stood over the last ARRIVAL_STANDING_MS: a relay that another
// flow keeps seconds deep delays everything (dropping it all would end the call, and shrinks no
// queue); the backlog a stall releases at once stands above that.
//
// Nothing acknowledged for REPORT_TIMEOUT_MS while data waits (reports that stop, or that come
// with the other direction's data but acknowledge nothing new): the cap stays. Reports travel in
// the same stream as the data they acknowledge, so they stop when the stream stalls inside Tor, and
// then writing more only deepens the backlog the extension exists to avoid; what waits meanwhile
// is dropped by our time bound, which is the point. Such stalls are counted. A stream that has
// acknowledged nothing new for STALL_MOVE_MS while data waits is the mobility machinery's business
// (stalledMs): the shim takes the allocation over on a new circuit, and the new stream gets a new
// session.
import { InflightCap, TOR_CELL_PAYLOAD, VITAL_CAPS, WindowedExtreme } from './inflight-cap.js';

export const REPORT_INTERVAL_MS = 50;
/**
 * Reports with no data to ride with go this often: each costs a 514-byte cell, a quarter of a
 * 600 kbit/s path's cells at 20 a second, just when the cap says the path is full.
 */
export const LONE_REPORT_MS = 2 * REPORT_INTERVAL_MS;
/**
 * A lone report for a little data waits this long (ms) after that data was first seen here, for
 * data of ours to ride with: an app answers what it got (a data channel's reply, an ICE check's
 * response) within a few ms, or sends again soon. A cell of its own just ahead of the app's next
 * packet costs that packet a stall on every quiet link of the circuit: tor sets no TCP_NODELAY
 * between relays, so Nagle holds the second segment until the first one's delayed ACK (40 ms or
 * more; README, bench:rtt). On tor-onion, idle data-channel pings (each 100 ms after the last
 * answer) took 1161-1225 ms with a lone report at once for every ping and 1084-1106 ms with none
 * (5 calls each, interleaved); 50 ms later instead of at once gained nothing clear (the next
 * ping then met the report); 200 ms: median 1153 -> 1102 ms (8 calls each, p 0.002), and on
 * tor-congested nothing worse (8 calls each). What is acknowledged late meanwhile is little: the
 * other end's cap is far from full.
 */
export const LONE_ACK_DELAY_MS = 4 * REPORT_INTERVAL_MS;
/** Unreported data of at least this many bytes gets its lone report without LONE_ACK_DELAY_MS (a flow, not a trickle). */
export const LONE_ACK_BYTES = 2 * TOR_CELL_PAYLOAD;
/** Lone reports while the path is full (see reportDue) go at least this often. */
export const LONE_REPORT_FULL_MS = 500;
/** Reports go on this long after the last data either way (so the last bytes are acknowledged), then stop. */
export const ACTIVE_MS = 250;
export const REPORT_TIMEOUT_MS = 2000;
/**
 * Nothing acknowledged this long while data waited: the shim gives the stream up and takes the
 * allocation over on a new circuit where it can (TURN mobility; see FlowMachine.upstreamStalled).
 * Twice REPORT_TIMEOUT_MS: a relay's hiccup of a second or two is waited out.
 */
export const STALL_MOVE_MS = 2 * REPORT_TIMEOUT_MS;
/** A report's verdict on arrival lateness holds this long (a report comes every REPORT_INTERVAL_MS). */
export const LATE_HOLD_MS = 2 * REPORT_INTERVAL_MS;
const BASE_WINDOW_MS = 10_000;
/** Arrival queueing that stood this long is a relay's (another flow's), not a stall's burst. */
export const ARRIVAL_STANDING_MS = 3000;
/**
 * Arrival lateness below this is left to the app: tor's hiccups (token-bucket steps, a relay's
 * stall of a few hundred ms, a congested relay's queue swinging by a second) end in a burst the
 * app's jitter buffers still use, where a video packet dropped costs a retransmission round trip
 * or a key frame (a freeze of its own), and an audio packet dropped is concealed for certain (a
 * dropped packet shrinks no queue: it has crossed the path already). At 500 ms the arrival check
 * dropped 115-312 audio packets a call on tor-congested, and 9-26% of the audio was concealed
 * (median 14-21% a run); at 2 s, or without the check, 6-10% (by-hand 9-11%), with frames decoded
 * and freezes within the spread between runs. A backlog this late is a long stall's.
 */
export const LATE_MIN_MS = 2000;
/**
 * The cap's queue target (ms). Above InflightCap's 50: tor's relays release cells in ~100 ms
 * token-bucket steps, so a cell often waits that long with no standing queue at all; a target
 * below that jitter drains (and under-fills) a path that is only bursty. Still under the
 * default time bound (150 ms), beyond which data is dropped anyway.
 */
export const DEFAULT_TARGET_MS = 100;
/**
 * While the path is the limit (or the other direction queues), a write that would leave its last Tor cell mostly empty waits this
 * long (ms, from its oldest message) for more (TcpBatchWriter's coalescing): an audio packet
 * every 20 ms then shares a cell with the next three and the RTCP between them. 80, not 40: each
 * expiry leaves a partly empty cell, and a path narrower than the call is short of cells (see
 * COALESCE_FILL for what it measured). Letting RTCP and other vital messages end the wait as
 * well made video collapse in one interleaved run (1.5 frames a second against 6.5 for the code
 * with neither change, 10 calls each: NACKs that came sooner brought retransmission storms of
 * 71-206 kbit/s, against 12-60): the wait is the rule while cells are short.
 */
export const COALESCE_MS = 80;
/**
 * The other direction queued above the target within this long (ms): our writes coalesce too.
 * A congested relay carries both directions of a circuit (each cell is read and written there),
 * so a reverse direction of lone cells takes the capacity the queued one lacks: on tor-congested
 * the server sent the media's sender 30-50 cells a second, 13-18% full (its RTCP, data-channel
 * answers and our reports), as many cells as the media itself.
 * Queued above what stood over ARRIVAL_STANDING_MS, not above the base: a media sender's cap
 * keeps about the target standing on an uncongested onion path, where coalescing only delays
 * the answers (tor-onion, 6 calls each: RTT p50 0.96, p95 0.94; tor-congested, 12 calls each:
 * freezes 0.88, fps 1.03, kbit/s 1.02). Twice the target above that level instead: on
 * tor-congested freeze time 1.83 and video lag p95 1.48 (12 calls each): there the excursions
 * of 100-200 ms are the ones to coalesce for.
 */
export const REVERSE_QUEUED_HOLD_MS = 1000;
/** A delivery-rate sample spans at least this much of the reporter's clock (two of tor's token-bucket refills). */
export const RATE_SPAN_MS = 200;

/** A report's content (@onionturn/protocol's DelayFeedback without its version). */
export interface DelayReport {
  /** The sender's clock, ms modulo 2^32. */
  readonly clockMs: number;
  /** Bytes the sender received from this end so far. */
  readonly receivedBytes: number;
  /**
   * The sender's clock minus this end's clock of the newest report it had: any offset; undefined
   * before it had one (0 would poison the other end's minimum: the clocks have any offset).
   */
  readonly oneWayDelayMs: number | undefined;
}

/** Counted over many sessions (one object per server or shim). */
export class DelayFeedbackCounters {
  negotiated = 0;
  reportsSent = 0;
  reportsReceived = 0;
  /** Writes of relayed data held back by the cap (once per hold, not per frame). */
  held = 0;
  /** Times nothing was acknowledged for REPORT_TIMEOUT_MS while the cap held data (see stalledMs). */
  stalls = 0;
}

export interface DelayFeedbackSessionOptions {
  /** Relayed data whose direction showed more queueing than this (ms) is dropped on arrival. */
  readonly staleMs: number;
  /** The cap's target queue delay (ms; default DEFAULT_TARGET_MS). */
  readonly targetMs?: number;
  /** The report's bytes on the wire (a fresh buffer each time). */
  readonly encode: (r: DelayReport) => Buffer;
  /** The clock late() reads (the same one the other inputs' `now` come from). */
  readonly clock: () => number;
  readonly counters: DelayFeedbackCounters;
  /**
   * Given the session's state at most once a second while reports arrive (the owners log it at
   * debug level: how the cap and the arrival check see the path, for tuning them).
   */
  readonly trace?: (state: Readonly<Record<string, number>>) => void;
}

/** Trace at most this often. */
const TRACE_EVERY_MS = 1000;
/** Sessions made so far in this process: a trace's `session` tells its lines apart. */
let sessions = 0;

/** The gate a writer consults (TcpBatchWriter's WriteGate). */
export class DelayFeedbackSession {
  #negotiated = false;
  #cap: InflightCap | undefined = undefined;
  /** Bytes written before negotiation: the cap counts from there. */
  #capBase = 0;
  #sent = 0;
  #received = 0;
  #reportBytesOut = 0;
  #reportBytesIn = 0;
  readonly #reportBytes: number;
  /** Data (non-report) byte totals when activity was last looked at, and when they last moved. */
  #seenOut = 0;
  #seenIn = 0;
  #dataAt = -Infinity;
  #reportSentAt = -Infinity;
  /** Data (non-report) bytes received when the last report went: a lone report needs more. */
  #dataInReported = 0;
  /** When reportDue first saw data received and not yet reported (-1: none such). */
  #unreportedSeenAt = -1;
  /** Bytes the other end's newest report says it received from us, and when that last grew (see stalledMs). */
  #peerReceived = 0;
  #progressAt = -Infinity;
  #lastWriteAt = -Infinity;
  /** The newest report's one-way delay as seen here (undefined before any), reported back. */
  #owdIn: number | undefined = undefined;
  readonly #baseIn = new WindowedExtreme(BASE_WINDOW_MS, 'min');
  #excessIn = 0;
  /** The least arrival queueing over ARRIVAL_STANDING_MS (see the top of the file). */
  readonly #standingIn = new WindowedExtreme(ARRIVAL_STANDING_MS, 'min');
  #lateUntil = 0;
  /** Until when the other direction counts as queued above the target (see coalesceMs). */
  #reverseQueuedUntil = 0;
  get #targetMs(): number {
    return this.#opts.targetMs ?? DEFAULT_TARGET_MS;
  }
  #stalled = false;
  #negotiatedAt = 0;
  #tracedAt = -Infinity;
  /** The cap's cells and bytes written at the last trace. */
  #tracedCells = 0;
  #tracedBytes = 0;
  readonly #id = ++sessions;
  readonly #opts: DelayFeedbackSessionOptions;
  /** Arrival queueing above this drops small media and data (droppableOnArrival): the bound, at least LATE_MIN_MS. */
  readonly #lateMs: number;

  constructor(opts: DelayFeedbackSessionOptions, sentSoFar = 0, receivedSoFar = 0) {
    this.#opts = opts;
    this.#lateMs = Math.max(opts.staleMs, LATE_MIN_MS);
    this.#sent = sentSoFar;
    this.#received = receivedSoFar;
    this.#seenOut = sentSoFar;
    this.#seenIn = receivedSoFar;
    this.#reportBytes = opts.encode({ clockMs: 0, receivedBytes: 0, oneWayDelayMs: 0 }).length;
  }

  get negotiated(): boolean {
    return this.#negotiated;
  }

  /** The other end echoed (shim) or offered (server) the extension: reports and the cap start. */
  negotiate(now: number): void {
    if (this.#negotiated) return;
    this.#negotiated = true;
    this.#negotiatedAt = now;
    this.#capBase = this.#sent;
    this.#cap = new InflightCap({
      targetMs: this.#targetMs,
      rateSpanMs: RATE_SPAN_MS,
      ackDelayMs: LONE_REPORT_MS,
    });
    this.#opts.counters.negotiated++;
  }

  /** The cap (after negotiation), for status. */
  get cap(): InflightCap | undefined {
    return this.#cap;
  }

  get sentBytes(): number {
    return this.#sent;
  }

  get receivedBytes(): number {
    return this.#received;
  }

  /** The queueing delay of the other direction the newest report showed, ms. */
  get arrivalExcessMs(): number {
    return this.#excessIn;
  }

  /** `bytes` went into the stream (reports included, when in the same write). */
  onWrite(now: number, bytes: number): void {
    // Nothing was in flight, or nothing was written for a while (what went before, a report of
    // ours, say, may stay unacknowledged while the other end is idle): the wait for an
    // acknowledgement starts now (see stalledMs).
    if (this.#sent <= this.#peerReceived || now - this.#lastWriteAt > REPORT_TIMEOUT_MS) this.#progressAt = now;
    this.#lastWriteAt = now;
    this.#sent += bytes;
    this.#cap?.onWrite(now, bytes);
  }

  /** `bytes` came out of the stream. */
  onRead(bytes: number): void {
    this.#received += bytes;
  }

  /** A report from the other end arrived (its bytes were counted by onRead). */
  onReport(now: number, r: DelayReport): void {
    if (!this.#negotiated) return;
    this.#opts.counters.reportsReceived++;
    this.#reportBytesIn += this.#reportBytes;
    const owd = (Math.floor(now) - r.clockMs) | 0;
    this.#owdIn = owd;
    this.#baseIn.add(now, owd);
    this.#excessIn = owd - (this.#baseIn.value(now) as number);
    this.#standingIn.add(now, this.#excessIn);
    const aboveStanding = this.#excessIn - (this.#standingIn.value(now) as number);
    this.#lateUntil = aboveStanding > this.#lateMs ? now + LATE_HOLD_MS : 0;
    if (aboveStanding > this.#targetMs) this.#reverseQueuedUntil = now + REVERSE_QUEUED_HOLD_MS;
    if (r.receivedBytes > this.#peerReceived && r.receivedBytes <= this.#sent) {
      this.#peerReceived = r.receivedBytes;
      this.#progressAt = now;
      this.#stalled = false; // a stall ends with progress, not with a report
    }
    const acked = r.receivedBytes - this.#capBase;
    if (acked >= 0) this.#cap?.onReport(now, acked, r.oneWayDelayMs, r.clockMs);
    if (this.#opts.trace !== undefined && now - this.#tracedAt >= TRACE_EVERY_MS) {
      this.#tracedAt = now;
      this.#opts.trace(this.#state(now));
    }
  }

  #state(now: number): Record<string, number> {
    const cap = this.#cap as InflightCap;
    const cells = cap.sentCells - this.#tracedCells;
    const bytes = cap.sentBytes - this.#tracedBytes;
    this.#tracedCells = cap.sentCells;
    this.#tracedBytes = cap.sentBytes;
    return {
      session: this.#id,
      // Cells written since the last trace and how full they were (%): what coalescing saves.
      cellsOut: cells,
      cellFillPct: cells > 0 ? Math.round((100 * bytes) / (cells * TOR_CELL_PAYLOAD)) : 0,
      pathLimited: cap.pathLimited(now) ? 1 : 0,
      // Short writes wait for more (the path is the limit, or the other direction queued).
      coalescing: this.coalesceMs(now) > 0 ? 1 : 0,
      capCells: cap.capCells(now),
      inflightCells: cap.inflightCells,
      rateCells: Math.round(cap.rate(now) ?? -1),
      // The rate an app-limited sender's cap is sized from.
      bestRateCells: Math.round(cap.bestRate(now) ?? -1),
      baseRttMs: Math.round(cap.baseRttMs(now) ?? -1),
      queueMs: Math.round(cap.queueDelayMs),
      foreignMs: Math.round(cap.foreignQueueMs(now)),
      arrivalExcessMs: Math.round(this.#excessIn),
      appLimited: cap.appLimited(now) ? 1 : 0,
    };
  }

  /**
   * How long bytes have been in flight with none of them acknowledged (ms; 0 with nothing in
   * flight, or before negotiation): since the other end's reports last acknowledged more, or since
   * the first write after everything was acknowledged (or after REPORT_TIMEOUT_MS without a
   * write), whichever is later. A quiet stream is not a stalled one, and reports that come (the
   * other direction flows) but acknowledge nothing new are a stall of this one. With data held
   * back meanwhile, the shim takes the allocation over on a new circuit after STALL_MOVE_MS (see
   * the top of the file).
   */
  stalledMs(now: number): number {
    if (!this.#negotiated || this.#sent <= this.#peerReceived) return 0;
    return now - Math.max(this.#progressAt, this.#negotiatedAt);
  }

  /** Is relayed data arriving now stale (see the top of the file)? One branch while it is not. */
  late(): boolean {
    return this.#lateUntil !== 0 && this.#opts.clock() < this.#lateUntil;
  }

  /** May a write of `bytes` of relayed data go now (`vital`: see InflightCap.mayWrite)? */
  mayWrite(now: number, bytes: number, vital = false): boolean {
    const cap = this.#cap;
    if (cap === undefined || cap.mayWrite(now, bytes, vital)) return true;
    if (!this.#stalled && this.stalledMs(now) > REPORT_TIMEOUT_MS) {
      this.#stalled = true;
      this.#opts.counters.stalls++;
    }
    return false;
  }

  /**
   * How long a write that fills little of its last cell may wait for more (TcpBatchWriter): only
   * while the path is the limit (InflightCap.pathLimited), or the other direction's data queued
   * more than the target above its standing level (REVERSE_QUEUED_HOLD_MS): a path with room
   * gets every write at once.
   */
  coalesceMs(now: number): number {
    const cap = this.#cap;
    if (cap === undefined) return 0;
    return cap.pathLimited(now) || now < this.#reverseQueuedUntil ? COALESCE_MS : 0;
  }

  /** The writer began holding data back. */
  onHold(): void {
    this.#opts.counters.held++;
  }

  /** Data flowed either way within ACTIVE_MS (reports do not count). */
  active(now: number): boolean {
    const out = this.#sent - this.#reportBytesOut;
    const inn = this.#received - this.#reportBytesIn;
    if (out !== this.#seenOut || inn !== this.#seenIn) {
      this.#seenOut = out;
      this.#seenIn = inn;
      this.#dataAt = now;
    }
    return now - this.#dataAt <= ACTIVE_MS;
  }

  /**
   * A report is due now. `alone`: it would go without data (a whole Tor cell of its own, taken
   * from a path the cap says is full): then only every LONE_REPORT_MS, only for new data of the
   * other end's, and for a little of it only LONE_ACK_DELAY_MS after this first saw it (noted
   * here: the writer asks with `alone` on each kick and timer tick).
   */
  reportDue(now: number, alone = false): boolean {
    // A timer tick a little early (or a report that went with data just before it) must not
    // push the next report a whole interval back.
    const every = alone ? LONE_REPORT_MS : REPORT_INTERVAL_MS;
    if (!this.#negotiated || now - this.#reportSentAt < every * 0.8 || !this.active(now)) return false;
    // Alone, only with data of the other end's to acknowledge: lone reports every LONE_REPORT_MS
    // while a call was setting up (its ICE checks every few hundred ms kept the streams active)
    // took a congested relay's capacity from the call (on tor-congested, the shims and the server
    // sent 55 a second, three quarters of the cells the relay's router had beside the bulk), and
    // the DTLS handshake waited a minute behind them. Our own data carries our reports.
    if (!alone) return true;
    const unreported = this.#received - this.#reportBytesIn - this.#dataInReported;
    if (unreported === 0) return false;
    // A little data is not acknowledged at once: data of ours may come and carry the report (LONE_ACK_DELAY_MS).
    if (this.#unreportedSeenAt < 0) this.#unreportedSeenAt = now;
    if (unreported < LONE_ACK_BYTES && now - this.#unreportedSeenAt < LONE_ACK_DELAY_MS) return false;
    // And while the path is full (the cap would not let even vital messages go), a lone report
    // waits as they do, up to LONE_REPORT_FULL_MS: each is a cell the path does not have.
    const cap = this.#cap;
    return cap === undefined || now - this.#reportSentAt >= LONE_REPORT_FULL_MS * 0.8 || cap.fits(now, this.#reportBytes, VITAL_CAPS);
  }

  /** The bytes of the report takeReport(now) would give (0: none is due). */
  dueReportBytes(now: number): number {
    return this.reportDue(now) ? this.#reportBytes : 0;
  }

  /**
   * The report to write now, if one is due (the caller writes it, ahead of any data in the same
   * write, and counts it with onWrite).
   */
  takeReport(now: number, alone = false): Buffer | undefined {
    if (!this.reportDue(now, alone)) return undefined;
    this.#reportSentAt = now;
    this.#dataInReported = this.#received - this.#reportBytesIn;
    this.#unreportedSeenAt = -1;
    this.#reportBytesOut += this.#reportBytes;
    this.#opts.counters.reportsSent++;
    return this.#opts.encode({ clockMs: Math.floor(now) >>> 0, receivedBytes: this.#received, oneWayDelayMs: this.#owdIn });
  }
}
