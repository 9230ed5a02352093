// DelayFeedbackSession on a fake clock (no sockets, no sleeps): negotiation, the report cadence
// (none while idle, reports are not activity), what a report says, the cap obeyed and re-opened by
// a report, the stale-on-arrival rule (nothing on an uncongested path), and reports that stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ACTIVE_MS,
  ARRIVAL_STANDING_MS,
  COALESCE_MS,
  DelayFeedbackCounters,
  DelayFeedbackSession,
  INITIAL_CELLS,
  LATE_HOLD_MS,
  LATE_MIN_MS,
  LONE_ACK_BYTES,
  LONE_ACK_DELAY_MS,
  LONE_REPORT_FULL_MS,
  REPORT_INTERVAL_MS,
  REPORT_TIMEOUT_MS,
  REVERSE_QUEUED_HOLD_MS,
  STALL_MOVE_MS,
  TOR_CELL_PAYLOAD,
  VITAL_CAPS,
  type DelayReport,
} from '../src/index.js';

/** Reports as JSON, 44 bytes like the wire's, so byte counts match what a shell would count. */
const REPORT_BYTES = 44;
function encode(r: DelayReport): Buffer {
  const b = Buffer.alloc(REPORT_BYTES);
  b.write(JSON.stringify(r).slice(0, REPORT_BYTES));
  return b;
}

function session(staleMs = 150): { s: DelayFeedbackSession; clock: { now: number }; counters: DelayFeedbackCounters; reports: DelayReport[] } {
  const clock = { now: 1000 };
  const counters = new DelayFeedbackCounters();
  const reports: DelayReport[] = [];
  const s = new DelayFeedbackSession({
    staleMs,
    encode: (r) => {
      reports.push(r);
      return encode(r);
    },
    clock: () => clock.now,
    counters,
  });
  reports.length = 0; // the constructor encodes one to learn the size
  return { s, clock, counters, reports };
}

/** A shell's write of `bytes` at `now` with the due report first, as TcpBatchWriter does. */
function write(s: DelayFeedbackSession, now: number, bytes: number): Buffer | undefined {
  const report = s.takeReport(now);
  s.onWrite(now, bytes + (report?.length ?? 0));
  return report;
}

test('before negotiation: no reports, no cap, nothing late, reports from the other end ignored', () => {
  const { s, clock, counters } = session();
  for (let t = 0; t < 200; t++) {
    assert.equal(write(s, 1000 + t * 10, 1000), undefined);
    assert.equal(s.mayWrite(1000 + t * 10, 1000), true, 'no cap before negotiation');
  }
  s.onReport(3000, { clockMs: 0, receivedBytes: 0, oneWayDelayMs: 99_999 });
  clock.now = 3000;
  assert.equal(s.late(), false);
  assert.deepEqual([counters.negotiated, counters.reportsSent, counters.reportsReceived], [0, 0, 0]);
  assert.equal(s.sentBytes, 200_000, 'bytes counted from the stream start all the same');
});

test('report cadence: every REPORT_INTERVAL_MS while data flows, none once idle; reports alone are no activity', () => {
  const { s, counters } = session();
  s.onWrite(0, 300); // the Allocate, before the echo
  s.negotiate(1000);
  const sentAt: number[] = [];
  // Data every 10 ms for 500 ms.
  for (let t = 1000; t < 1500; t += 10) if (write(s, t, 120)) sentAt.push(t);
  assert.equal(sentAt[0], 1000);
  for (let i = 1; i < sentAt.length; i++) assert.ok((sentAt[i] as number) - (sentAt[i - 1] as number) >= REPORT_INTERVAL_MS * 0.8, `${sentAt}`);
  assert.ok(sentAt.length >= 8 && sentAt.length <= 13, `about one per 50 ms: ${sentAt.length}`);
  // Then idle: a few more reports (the last bytes get acknowledged), then none at all.
  const idle: number[] = [];
  for (let t = 1500; t < 5000; t += 10) if (write(s, t, 0)) idle.push(t);
  // (Activity is looked at when a report could be due: seen up to an interval late.)
  assert.ok(idle.length >= 1 && idle.every((t) => t <= 1490 + ACTIVE_MS + REPORT_INTERVAL_MS), `reports only within ACTIVE_MS of the last data: ${idle}`);
  // The other end's reports arriving (counted as read bytes) do not wake ours up.
  const before = counters.reportsSent;
  for (let t = 5000; t < 6000; t += 50) {
    s.onRead(REPORT_BYTES);
    s.onReport(t, { clockMs: t, receivedBytes: s.sentBytes, oneWayDelayMs: 0 });
    assert.equal(s.takeReport(t), undefined, 'no report for reports');
  }
  assert.equal(counters.reportsSent, before);
  // Data read from the other end is activity.
  s.onRead(1000);
  assert.ok(s.takeReport(6100) !== undefined);
});

test('a report alone goes only with new data from the other end to acknowledge: not every LONE_REPORT_MS while a call sets up', () => {
  const { s, counters } = session();
  s.negotiate(1000);
  // The other end sends a 100-byte ICE check every 300 ms; this end has nothing to send, and its
  // writer's timer offers a lone report every 10 ms.
  let arrivals = 0;
  for (let t = 1000; t < 4000; t += 10) {
    if ((t - 1000) % 300 === 0) {
      s.onRead(100);
      arrivals++;
    }
    const r = s.takeReport(t, true);
    if (r !== undefined) s.onWrite(t, r.length);
  }
  assert.equal(counters.reportsSent, arrivals, `one lone report per arrival (${arrivals}), not ${counters.reportsSent}`);
  // With data of its own to write, a report rides along every REPORT_INTERVAL_MS as before.
  const before = counters.reportsSent;
  for (let t = 4000; t < 4500; t += 10) write(s, t, 120);
  assert.ok(counters.reportsSent - before >= 8, `${counters.reportsSent - before} reports with data`);
});

test("a lone report for a little data waits LONE_ACK_DELAY_MS: the app's answer carries it, not a cell of its own right ahead of the answer (tor's Nagle would hold the answer)", () => {
  const { s, counters } = session();
  s.negotiate(1000);
  // A data-channel message arrives; the report that came with it kicks the writer at once.
  s.onRead(150);
  assert.equal(s.takeReport(2000, true), undefined, 'no lone report right ahead of the answer');
  // The app answers 2 ms later: the report rides with the answer, in the same cell.
  assert.notEqual(write(s, 2002, 150), undefined, 'the answer carries the report');
  assert.equal(counters.reportsSent, 1);
  // Data that gets no answer is acknowledged alone, LONE_ACK_DELAY_MS after it was first seen.
  s.onRead(150);
  assert.equal(s.takeReport(3000, true), undefined);
  assert.equal(s.takeReport(3000 + LONE_ACK_DELAY_MS - 1, true), undefined);
  assert.notEqual(s.takeReport(3000 + LONE_ACK_DELAY_MS, true), undefined);
  assert.equal(counters.reportsSent, 2);
  // A flow, not a trickle (LONE_ACK_BYTES unreported): acknowledged at once, as before.
  s.onRead(LONE_ACK_BYTES);
  assert.notEqual(s.takeReport(4000, true), undefined);
  assert.equal(counters.reportsSent, 3);
});

test('a report says: this clock, bytes received from the other end, and the one-way delay of its newest report', () => {
  const { s, reports } = session();
  s.negotiate(1000);
  s.onRead(5000);
  // Before any report of the other end: no one-way delay to give (0 would be a value).
  write(s, 950, 100);
  assert.equal(reports.at(-1)?.oneWayDelayMs, undefined);
  // The other end's report: written at its clock 700, arriving at 1000 here.
  s.onRead(REPORT_BYTES);
  s.onReport(1000, { clockMs: 700, receivedBytes: 0, oneWayDelayMs: 0 });
  write(s, 1010, 100);
  assert.deepEqual(reports.at(-1), { clockMs: 1010, receivedBytes: 5000 + REPORT_BYTES, oneWayDelayMs: 300 });
});

test('the cap: writes stop at INITIAL_CELLS in flight without reports; a report acknowledging them opens it again', () => {
  const { s, counters } = session();
  s.negotiate(0);
  let t = 0;
  let written = 0;
  while (s.mayWrite(t, TOR_CELL_PAYLOAD)) {
    s.onWrite(t, TOR_CELL_PAYLOAD);
    written++;
    t += 1;
    assert.ok(written <= INITIAL_CELLS, 'capped');
  }
  assert.equal(written, INITIAL_CELLS);
  assert.equal(s.mayWrite(t, TOR_CELL_PAYLOAD), false);
  // The other end received all of it.
  s.onReport(t + 20, { clockMs: t, receivedBytes: s.sentBytes, oneWayDelayMs: 10 });
  assert.equal(s.mayWrite(t + 20, TOR_CELL_PAYLOAD), true, 'nothing in flight: the cap opens');
  assert.equal(counters.reportsReceived, 1);
});

test('the cap follows the delivery rate: a slow path holds writes to about rate x (base + target)', () => {
  const { s } = session();
  s.negotiate(0);
  // A path that delivers 100 cells/s with a 20 ms base round trip; the sender always has data.
  let acked = 0;
  const sent: { at: number; total: number }[] = [];
  let maxInflight = 0;
  for (let t = 0; t < 5000; t++) {
    while (s.mayWrite(t, TOR_CELL_PAYLOAD)) {
      s.onWrite(t, TOR_CELL_PAYLOAD);
      sent.push({ at: t, total: s.sentBytes });
    }
    // Delivery: one cell per 10 ms after 10 ms of travel; reports every 50 ms, 10 ms back.
    if (t % 10 === 0 && acked < sent.length && (sent[acked] as { at: number }).at <= t - 10) acked++;
    if (t % 50 === 0 && acked > 0) s.onReport(t + 10, { clockMs: t, receivedBytes: (sent[acked - 1] as { total: number }).total, oneWayDelayMs: 10 });
    if (t > 2000) maxInflight = Math.max(maxInflight, sent.length - acked);
  }
  // Without a cap everything would be in flight; rate x (base + target) is about 100 x 0.13 s.
  assert.ok(maxInflight <= 30, `in flight after the first reports: at most ${maxInflight} cells`);
});

test('stale on arrival: only while the newest report showed more queueing than the bound (and than LATE_MIN_MS), and only while it is fresh', () => {
  const { s, clock } = session(150);
  s.negotiate(0);
  // Uncongested: the other end's reports arrive 40-60 ms after their clock (offset included).
  for (let t = 0; t < 2000; t += 50) {
    s.onReport(t, { clockMs: t - 40 - ((t / 50) % 3) * 10, receivedBytes: 0, oneWayDelayMs: 0 });
    clock.now = t + 1;
    assert.equal(s.late(), false, 'an uncongested path drops nothing');
  }
  // A hiccup: a report written at 1960 arrives at 2400 (400 ms of queueing): over the bound, but
  // the app's jitter buffers still use such a burst.
  s.onReport(2400, { clockMs: 1960, receivedBytes: 0, oneWayDelayMs: 0 });
  clock.now = 2401;
  assert.equal(s.late(), false, 'a hiccup under LATE_MIN_MS drops nothing');
  assert.ok(s.arrivalExcessMs >= 350);
  // A congested relay's queue swinging by 600 ms: late, but audio delivered late may still be
  // played, and dropped it is concealed for certain.
  s.onReport(2700, { clockMs: 2040, receivedBytes: 0, oneWayDelayMs: 0 });
  clock.now = 2701;
  assert.equal(s.late(), false, 'a backlog under LATE_MIN_MS drops nothing');
  assert.ok(s.arrivalExcessMs >= 600);
  // A long stall: a report written at 2100 arrives LATE_MIN_MS + 200 ms later than its peers.
  const at = 2100 + 40 + LATE_MIN_MS + 200;
  s.onReport(at, { clockMs: 2100, receivedBytes: 0, oneWayDelayMs: 0 });
  clock.now = at + 1;
  assert.equal(s.late(), true);
  assert.ok(s.arrivalExcessMs > LATE_MIN_MS);
  clock.now = at + LATE_HOLD_MS + 1;
  assert.equal(s.late(), false, 'an old verdict does not last');
  // Back to normal after the burst.
  s.onReport(at + 50, { clockMs: at + 10, receivedBytes: 0, oneWayDelayMs: 0 });
  clock.now = at + 51;
  assert.equal(s.late(), false);
});

test('stale on arrival with a bound above LATE_MIN_MS: the bound decides', () => {
  const bound = LATE_MIN_MS + 300;
  const { s, clock } = session(bound);
  s.negotiate(0);
  for (let t = 0; t < 1000; t += 50) s.onReport(t, { clockMs: t - 40, receivedBytes: 0, oneWayDelayMs: 0 });
  // Queueing above LATE_MIN_MS, under the bound.
  s.onReport(1000 + 40 + bound - 100, { clockMs: 1000, receivedBytes: 0, oneWayDelayMs: 0 });
  clock.now = 1000 + 40 + bound - 99;
  assert.equal(s.late(), false);
  // Above the bound.
  s.onReport(1100 + 40 + bound + 100, { clockMs: 1100, receivedBytes: 0, oneWayDelayMs: 0 });
  clock.now = 1100 + 40 + bound + 101;
  assert.equal(s.late(), true);
});

test('reports that stop while the cap holds data: the cap stays (writes wait, where the time bound drops them) and the stall is counted once', () => {
  const { s, counters } = session();
  s.negotiate(0);
  for (let i = 0; i < INITIAL_CELLS; i++) s.onWrite(0, TOR_CELL_PAYLOAD);
  for (let t = 0; t <= REPORT_TIMEOUT_MS; t += 100) assert.equal(s.mayWrite(t, 100), false);
  assert.equal(counters.stalls, 0);
  for (let t = REPORT_TIMEOUT_MS + 1; t < 3 * REPORT_TIMEOUT_MS; t += 100) assert.equal(s.mayWrite(t, 100), false, 'still capped');
  assert.equal(counters.stalls, 1);
  // A report again: it ends.
  s.onReport(7000, { clockMs: 0, receivedBytes: s.sentBytes, oneWayDelayMs: 0 });
  assert.equal(s.mayWrite(7000, 100), true);
});

test('stalledMs: how long what is in flight has gone unacknowledged; a quiet stream, or one whose reports still acknowledge, is not stalled', () => {
  const { s } = session();
  s.onWrite(0, 1000);
  assert.equal(s.stalledMs(5000), 0, 'before negotiation: no reports are expected');
  s.negotiate(1000);
  assert.equal(s.stalledMs(1500), 500, 'in flight since negotiation, nothing acknowledged');
  s.onReport(2000, { clockMs: 1960, receivedBytes: 1000, oneWayDelayMs: 0 });
  assert.equal(s.stalledMs(2050), 0, 'all acknowledged: nothing in flight');
  // Ten seconds of quiet, then a write: the wait starts with it, not with the last report.
  s.onWrite(12_000, 500);
  assert.equal(s.stalledMs(12_100), 100);
  // Reports keep coming (the other direction flows) but acknowledge nothing new: a stall of ours.
  for (let t = 12_100; t <= 12_000 + STALL_MOVE_MS; t += 50) s.onReport(t, { clockMs: t - 40, receivedBytes: 1000, oneWayDelayMs: 0 });
  assert.equal(s.stalledMs(12_000 + STALL_MOVE_MS), STALL_MOVE_MS);
  // An acknowledgement of part of it: progress, the wait starts again.
  s.onReport(16_100, { clockMs: 16_060, receivedBytes: 1200, oneWayDelayMs: 0 });
  assert.equal(s.stalledMs(16_200), 100);
  // The rest acknowledged; a report of ours the other end, idle, never acknowledges; quiet; then
  // data: not a stall of ten seconds.
  s.onReport(16_300, { clockMs: 16_260, receivedBytes: 1500, oneWayDelayMs: 0 });
  s.onWrite(16_400, 44);
  s.onWrite(26_400, 1000);
  assert.equal(s.stalledMs(26_500), 100);
});

test('a stall of one direction (reports still come with the other direction, acknowledging nothing new) is counted once, until progress', () => {
  const { s, counters } = session();
  s.negotiate(0);
  s.onWrite(0, INITIAL_CELLS * TOR_CELL_PAYLOAD);
  for (let t = 50; t <= 6000; t += 50) {
    s.onReport(t, { clockMs: t - 40, receivedBytes: 0, oneWayDelayMs: 0 });
    assert.equal(s.mayWrite(t + 1, TOR_CELL_PAYLOAD), false);
  }
  assert.equal(counters.stalls, 1);
  s.onReport(6050, { clockMs: 6010, receivedBytes: INITIAL_CELLS * TOR_CELL_PAYLOAD, oneWayDelayMs: 0 });
  assert.equal(s.stalledMs(6100), 0, 'all acknowledged');
});

test('while the path is full (more in flight than even vital messages may fill), a lone report goes only every LONE_REPORT_FULL_MS', () => {
  const { s, counters } = session();
  s.negotiate(1000);
  // Far more in flight than VITAL_CAPS x INITIAL_CELLS, none of it acknowledged.
  s.onWrite(1000, 3 * VITAL_CAPS * INITIAL_CELLS * TOR_CELL_PAYLOAD);
  // The other end's audio every 20 ms (a flow: LONE_ACK_BYTES within 80 ms); the writer's timer offers a lone report every 10 ms.
  for (let t = 1000; t < 3000; t += 10) {
    if (t % 20 === 0) s.onRead(300);
    const r = s.takeReport(t, true);
    if (r !== undefined) s.onWrite(t, r.length);
  }
  assert.ok(counters.reportsSent <= 2000 / (LONE_REPORT_FULL_MS * 0.8) + 1, `${counters.reportsSent} lone reports in 2 s`);
  assert.ok(counters.reportsSent >= 2000 / LONE_REPORT_FULL_MS - 1, `still some: ${counters.reportsSent}`);
  // Acknowledged (the path drained): lone reports every LONE_REPORT_MS again.
  s.onReport(3000, { clockMs: 3000, receivedBytes: s.sentBytes, oneWayDelayMs: 0 });
  const before = counters.reportsSent;
  for (let t = 3000; t < 4000; t += 10) {
    if (t % 20 === 0) s.onRead(300);
    const r = s.takeReport(t, true);
    if (r !== undefined) s.onWrite(t, r.length);
  }
  assert.ok(counters.reportsSent - before >= 8, `${counters.reportsSent - before} lone reports in 1 s`);
});

test("writes coalesce while the other direction's data queues above the target (a congested relay carries both), not while both have room", () => {
  const { s } = session();
  s.negotiate(0);
  // Uncongested: the other end's reports arrive 40 ms after their clock (offset included).
  for (let t = 0; t <= 1000; t += 50) s.onReport(t, { clockMs: t - 40, receivedBytes: 0, oneWayDelayMs: 0 });
  assert.equal(s.coalesceMs(1001), 0, 'a path with room either way: every write at once');
  // The other direction's data now waits 200 ms more than its base (the target is 100).
  s.onReport(1050, { clockMs: 1050 - 40 - 200, receivedBytes: 0, oneWayDelayMs: 0 });
  assert.equal(s.coalesceMs(1051), COALESCE_MS, 'our lone cells would take what that direction lacks');
  // Back to its base: the verdict holds a while, then ends.
  s.onReport(1100, { clockMs: 1100 - 40, receivedBytes: 0, oneWayDelayMs: 0 });
  assert.equal(s.coalesceMs(1050 + REVERSE_QUEUED_HOLD_MS - 1), COALESCE_MS);
  assert.equal(s.coalesceMs(1050 + REVERSE_QUEUED_HOLD_MS + 1), 0);
  // A hiccup under the target changes nothing.
  s.onReport(2200, { clockMs: 2200 - 40 - 60, receivedBytes: 0, oneWayDelayMs: 0 });
  assert.equal(s.coalesceMs(2201), 0);
  // A queue that stands (a media sender's cap keeps about the target there): once it stood for
  // ARRIVAL_STANDING_MS it is the level, not a congested relay, and writes go at once again.
  let t = 2250;
  for (; t <= 2250 + ARRIVAL_STANDING_MS + REVERSE_QUEUED_HOLD_MS; t += 50) s.onReport(t, { clockMs: t - 40 - 150, receivedBytes: 0, oneWayDelayMs: 0 });
  assert.equal(s.coalesceMs(t), 0, 'a standing 150 ms: no coalescing');
  // An excursion above that level is a congested relay again.
  s.onReport(t, { clockMs: t - 40 - 150 - 120, receivedBytes: 0, oneWayDelayMs: 0 });
  assert.equal(s.coalesceMs(t + 1), COALESCE_MS, 'the target above the standing level: coalescing');
});
