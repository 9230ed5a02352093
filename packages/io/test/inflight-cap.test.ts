// InflightCap on a fake clock: its estimates from writes and reports, and, against a simulated
// bottleneck (a FIFO served at a fixed cell rate, fixed propagation delay, reports every 50 ms),
// a sender offering twice the path's rate keeps the path busy with the queue near its target,
// where without the cap the queue grows without end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { APP_LIMITED_GAIN, BURST_CELLS, MIN_RATE_CELLS, INITIAL_CELLS, InflightCap, MIN_CELLS, REFUSING_CREDIT_MS, VITAL_CAPS } from '../src/index.js';

test('cells: a write of n bytes takes ceil(n / 498) cells; a lone small packet a whole one', () => {
  assert.equal(InflightCap.cells(120), 1);
  assert.equal(InflightCap.cells(498), 1);
  assert.equal(InflightCap.cells(1004), 3);
});

test('estimates: base round trip, delivery rate, forward queue delay, cap', () => {
  const c = new InflightCap({ targetMs: 50 });
  assert.equal(c.capCells(0), INITIAL_CELLS);
  // 10 cells every 10 ms, acknowledged 100 ms later.
  for (let t = 0; t <= 1000; t += 10) {
    c.onWrite(t, 10 * 498);
    if (t >= 100 && t % 50 === 0) c.onReport(t, ((t - 100) / 10 + 1) * 10 * 498, 1000 + 50);
  }
  assert.equal(c.baseRttMs(1000), 100);
  assert.equal(c.rate(1000), 1000); // cells per second
  assert.equal(c.bestRate(1000), 1000);
  assert.equal(c.queueDelayMs, 0);
  // 1000 cells/s x (100 + 50) ms, times the gain of a sender the cap never refused.
  assert.equal(c.capCells(1000), APP_LIMITED_GAIN * 150);
  assert.equal(c.inflightCells, 100); // the last 100 ms of writes
  // A sender offering more than the cap allows (it refuses): no burst allowance from here.
  assert.equal(c.mayWrite(1000, 1000 * 498), false);
  assert.equal(c.capCells(1000), 150);
  // The one-way delay grows past the target: drain to rate x base.
  c.onReport(1010, 92 * 10 * 498, 1000 + 50 + 80);
  assert.equal(c.queueDelayMs, 80);
  assert.equal(c.capCells(1010), 100);
  // A report of more than was sent, or of less than before, is ignored.
  c.onReport(1020, 10 ** 9, 0);
  c.onReport(1020, 1, 0);
  assert.equal(c.queueDelayMs, 80);
});

test('a report written before its sender had seen our clock carries no one-way delay: it is not the baseline of the queue delay', () => {
  // The ends' clocks differ by any offset (here the receiver's is 5 s ahead): a 0 in the
  // minimum would read as 5 s of queue, and the cap would drain the first 10 s of every stream.
  const c = new InflightCap({ targetMs: 100 });
  c.onWrite(0, 498);
  c.onReport(10, 0, undefined);
  c.onReport(160, 498, 5125);
  c.onReport(210, 498, 5125);
  assert.equal(c.queueDelayMs, 0);
});

test('the burst allowance of an app-limited sender: jitter above target is no standing queue; a queue that stands a second is', () => {
  const c = new InflightCap({ targetMs: 100 });
  c.onWrite(0, 498);
  // Reports every 50 ms; the one-way delay jumps between its base and 150 ms above it (six relays' jitter).
  let t = 0;
  for (; t <= 2050; t += 50) c.onReport(t, 498, 5000 + ((t / 50) % 2) * 150); // the last one high
  assert.ok(c.appLimited(t) && c.capCells(t) >= BURST_CELLS, 'jitter: the allowance stays');
  // 150 ms above the base in every report for over a second: a queue stands.
  for (const end = t + 1100; t <= end; t += 50) c.onReport(t, 498, 5150);
  assert.equal(c.appLimited(t), false);
  assert.ok(c.capCells(t) < BURST_CELLS, `cap ${c.capCells(t)}`);
});

test('mayWrite: within the cap, and always with nothing in flight; the cap never falls below MIN_CELLS', () => {
  const c = new InflightCap();
  assert.equal(c.mayWrite(0, 100 * 498), true);
  c.onWrite(0, 100 * 498);
  assert.equal(c.mayWrite(0, 1), false);
  c.onReport(10, 100 * 498, 5);
  c.onReport(20, 100 * 498, 5); // a report with nothing new: rate 0 for this interval
  assert.equal(c.mayWrite(20, 498), true);
  assert.ok(c.capCells(3000) >= MIN_CELLS);
});

test('a trickle on a path with a round trip of seconds (a relay another flow keeps queued): the cap is sized from at least MIN_RATE_CELLS', () => {
  const c = new InflightCap({ targetMs: 100, rateSpanMs: 200, ackDelayMs: 100 });
  // A call's setup: a 300-byte message every 500 ms, acknowledged 2.5 s later; from 15 s the one-way
  // delay stands a second higher (the other flow's queue): no burst allowance at first, the cap
  // drains (rate x base); once it stood three base round trips it is taken as another flow's.
  let acked = 0;
  const sent: { at: number; bytes: number }[] = [];
  let limitedEarly: boolean | undefined;
  for (let t = 0; t <= 23_000; t += 50) {
    if (t % 500 === 0) {
      c.onWrite(t, 300);
      sent.push({ at: t, bytes: 300 });
    }
    while (sent.length > 0 && sent[0]!.at + 2500 <= t) acked += sent.shift()!.bytes;
    c.onReport(t, acked, 5000 + (t >= 15_000 ? 1000 : 0), t + 777);
    if (t === 16_000) limitedEarly = c.appLimited(t);
  }
  assert.ok((c.rate(23_000) ?? 0) < MIN_RATE_CELLS, `the trickle's own rate ${c.rate(23_000)} cells/s`);
  assert.ok((c.baseRttMs(23_000) ?? 0) >= 2500);
  assert.equal(limitedEarly, false, 'a queue standing for a second: no burst allowance');
  assert.equal(c.foreignQueueMs(23_000), 1000 - 100, "standing for 8 s (three round trips are 7.5 s): another flow's, less the target");
  assert.equal(c.appLimited(23_000), true, 'above the foreign queue there is none: the burst allowance is back');
  assert.ok(c.capCells(23_000) >= Math.floor((MIN_RATE_CELLS * 2500) / 1000), `cap ${c.capCells(23_000)} cells`);
});

/**
 * Simulates `seconds` of a sender offering `offeredCellsPerMs` (whole 1000-byte messages) into a
 * bottleneck of `rateCellsPerMs` with `oneWayMs` each way; messages the cap does not let through
 * are dropped at the sender (the time-bounded queue's job). Returns the queueing delays (ms) of
 * what was delivered in the last half, and the delivered cells per ms then.
 */
function simulate(
  cap: InflightCap | undefined,
  seconds: number,
  o: { offered?: number; foreignMs?: (now: number) => number } = {},
): { p95: number; max: number; utilisation: number; delivered: number } {
  const RATE = 0.1; // cells per ms (~50 kB/s)
  const ONE_WAY = 40;
  const MSG = 1000; // bytes: 3 cells
  const EVERY = InflightCap.cells(MSG) / RATE / (o.offered ?? 2); // twice the path's rate by default
  // Another flow keeps the bottleneck's FIFO this deep (its cells, ahead of ours as they come).
  const foreign = o.foreignMs ?? (() => 0);
  const fifo: { cells: number; bytes: number; at: number; foreign?: boolean }[] = [];
  let queued = 0;
  let offeredLate = 0;
  const arriving: { at: number; bytes: number; sentAt: number }[] = [];
  const reports: { at: number; bytes: number; owd: number | undefined }[] = [];
  let received = 0;
  let lastOwd: number | undefined = undefined; // none until something arrived
  let served = 0; // fractional cells of the head served
  const delays: number[] = [];
  let deliveredLate = 0;
  let nextSend = 0;
  const end = seconds * 1000;
  for (let now = 0; now < end; now++) {
    if (now >= nextSend) {
      nextSend += EVERY;
      if (now >= end / 2) offeredLate += InflightCap.cells(MSG);
      if (!cap || cap.mayWrite(now, MSG)) {
        cap?.onWrite(now, MSG);
        fifo.push({ cells: InflightCap.cells(MSG), bytes: MSG, at: now });
        queued += InflightCap.cells(MSG);
      }
    }
    while (queued < foreign(now) * RATE) {
      fifo.push({ cells: 1, bytes: 0, at: now, foreign: true });
      queued++;
    }
    // The bottleneck serves RATE cells per ms, then the message travels ONE_WAY.
    served += RATE;
    while (fifo.length > 0 && served >= fifo[0]!.cells) {
      const m = fifo.shift()!;
      served -= m.cells;
      queued -= m.cells;
      if (m.foreign) continue;
      if (now >= end / 2) {
        delays.push(now - m.at);
        deliveredLate += m.cells;
      }
      arriving.push({ at: now + ONE_WAY, bytes: m.bytes, sentAt: m.at });
    }
    if (fifo.length === 0) served = Math.min(served, 1);
    while (arriving.length > 0 && arriving[0]!.at <= now) {
      const a = arriving.shift()!;
      received += a.bytes;
      lastOwd = now - a.sentAt + 5000; // the receiver's clock is 5 s off: only differences count
    }
    if (now % 50 === 0) reports.push({ at: now + ONE_WAY, bytes: received, owd: lastOwd });
    while (reports.length > 0 && reports[0]!.at <= now) {
      const r = reports.shift()!;
      cap?.onReport(now, r.bytes, r.owd);
    }
  }
  delays.sort((a, b) => a - b);
  return {
    p95: delays[Math.floor(delays.length * 0.95)] ?? 0,
    max: delays.at(-1) ?? 0,
    utilisation: deliveredLate / (RATE * (end / 2)),
    delivered: deliveredLate / offeredLate,
  };
}

test('a sender offering twice the path: with the cap the bottleneck queue stays near target and the path stays busy', () => {
  const capped = simulate(new InflightCap({ targetMs: 50 }), 20);
  assert.ok(capped.utilisation > 0.85, `utilisation ${capped.utilisation}`);
  assert.ok(capped.p95 <= 120, `queue delay p95 ${capped.p95} ms`);
  assert.ok(capped.max <= 200, `queue delay max ${capped.max} ms`);
  const uncapped = simulate(undefined, 20);
  assert.ok(uncapped.p95 > 5000, `without the cap the queue grows: p95 ${uncapped.p95} ms`);
});

test('a queue another flow keeps 2 s deep (a bulk download on the relay): a sender offering a third of the path gets it through, adding little delay', () => {
  // The other flow backs off for 3 s every 10 s (its queue drains to 200 ms): the least delay of
  // the last 10 s is that, and the 2 s between look like a queue. Before, the cap read it as ours
  // and drained (rate x base) while it stood; what it refused the writer dropped as stale (the
  // tor-congested profile's calls starved).
  const foreignMs = (now: number): number => (now % 10_000 < 3000 ? 200 : 2000);
  const capped = simulate(new InflightCap({ targetMs: 50 }), 40, { offered: 1 / 3, foreignMs });
  assert.ok(capped.delivered > 0.9, `delivered ${capped.delivered} of what was offered`);
  assert.ok(capped.p95 <= 2000 + 150, `queue delay p95 ${capped.p95} ms (the other flow's 2000 ms included)`);
});

test('rate samples over the reporter clock and a minimum span: reports bunched on their way back (behind a stall) do not inflate the rate', () => {
  // A receiver that got 100 cells/s, reporting every 50 ms of its clock; its reports reach the
  // sender four at a time, a millisecond apart (as after a stall in the return direction).
  const run = (opts: { rateSpanMs?: number }, withClock: boolean): number => {
    const c = new InflightCap(opts);
    for (let i = 0; i < 400; i++) c.onWrite(0, 498); // 400 cells in flight
    let now = 1000;
    for (let k = 1; k <= 20; k++) {
      const reporterClock = k * 50;
      if (k % 4 === 0) now += 200;
      c.onReport(now + (k % 4), k * 5 * 498, 10, withClock ? reporterClock : undefined);
    }
    return c.rate(now + 4) as number;
  };
  const robust = run({ rateSpanMs: 200 }, true);
  assert.ok(robust > 90 && robust < 110, `about 100 cells/s: ${robust}`);
  const naive = run({}, false);
  assert.ok(naive > 1000, `every report a sample, timed on arrival: ${naive} cells/s`);
});

/**
 * The writer as TcpBatchWriter runs it: what the cap refuses waits in order, and what has waited
 * `holdMs` is dropped from the head (the time-bounded queue). `send(now)` gives the packet sizes
 * the app hands over at `now`; the path is a FIFO served at `rate` cells per ms, then `oneWayMs`
 * each way; the receiver reports every 50 ms of its clock. Returns the share of offered bytes
 * dropped, and the worst wait in the writer plus the bottleneck of what was delivered.
 */
function simulateHeld(
  cap: InflightCap,
  path: { rate: number; oneWayMs: number },
  send: (now: number) => readonly number[],
  seconds: number,
  holdMs: number,
  stalls: readonly { at: number; forMs: number }[] = [],
): { droppedShare: number; worstDelayMs: number; p95DelayMs: number } {
  const held: { bytes: number; at: number }[] = [];
  const fifo: { cells: number; bytes: number; at: number }[] = [];
  const arriving: { at: number; bytes: number; sentAt: number }[] = [];
  const reports: { at: number; bytes: number; owd: number | undefined; clock: number }[] = [];
  let offered = 0;
  let dropped = 0;
  let received = 0;
  let lastOwd: number | undefined = undefined; // none until something arrived
  let served = 0;
  let worst = 0;
  const delays: number[] = [];
  for (let now = 0; now < seconds * 1000; now++) {
    for (const bytes of send(now)) {
      offered += bytes;
      held.push({ bytes, at: now });
    }
    while (held.length > 0 && now - held[0]!.at > holdMs) dropped += held.shift()!.bytes;
    while (held.length > 0 && cap.mayWrite(now, held[0]!.bytes)) {
      const m = held.shift()!;
      cap.onWrite(now, m.bytes);
      fifo.push({ cells: InflightCap.cells(m.bytes), bytes: m.bytes, at: m.at });
    }
    // A stalled link (tor-typical's links stall 300 ms every ~2 min) carries nothing either way:
    // the bottleneck serves nothing, and what travels arrives after the stall.
    const stall = stalls.find((s) => now >= s.at && now < s.at + s.forMs);
    if (stall === undefined) served += path.rate;
    while (fifo.length > 0 && served >= fifo[0]!.cells) {
      const m = fifo.shift()!;
      served -= m.cells;
      worst = Math.max(worst, now - m.at);
      delays.push(now - m.at);
      arriving.push({ at: now + path.oneWayMs, bytes: m.bytes, sentAt: m.at });
    }
    if (fifo.length === 0) served = Math.min(served, 1);
    while (stall === undefined && arriving.length > 0 && arriving[0]!.at <= now) {
      const a = arriving.shift()!;
      received += a.bytes;
      lastOwd = now - a.sentAt + 5000;
    }
    if (now % 50 === 0) reports.push({ at: now + path.oneWayMs, bytes: received, owd: lastOwd, clock: now + 777 });
    while (stall === undefined && reports.length > 0 && reports[0]!.at <= now) {
      const r = reports.shift()!;
      cap.onReport(now, r.bytes, r.owd, r.clock);
    }
  }
  delays.sort((a, b) => a - b);
  return { droppedShare: dropped / offered, worstDelayMs: worst, p95DelayMs: delays[Math.floor(delays.length * 0.95)] ?? 0 };
}

/** A video call's sender: a ~1.1 kB frame every 33 ms, and every 2 s a 36 kB key frame in 1200-byte packets at once. */
function video(now: number): readonly number[] {
  if (now % 2000 === 500) return new Array<number>(30).fill(1200);
  return now % 33 === 0 ? [1100] : [];
}

test('an app-limited sender on a path with room (video, 4 Mbit/s, 250 ms round trip): its bursts go through, nothing is dropped', () => {
  // As DelayFeedbackSession configures it, with the 150 ms time bound of the writer.
  const cap = new InflightCap({ targetMs: 100, rateSpanMs: 200, ackDelayMs: 100 });
  const r = simulateHeld(cap, { rate: 1, oneWayMs: 125 }, video, 20, 150);
  assert.equal(r.droppedShare, 0, `dropped ${(r.droppedShare * 100).toFixed(1)}% of the offered bytes`);
  assert.ok(r.worstDelayMs <= 150, `worst wait ${r.worstDelayMs} ms`);
});

test('an app-limited sender on a long path with room (video, 4 Mbit/s, 550 ms round trip: an onion service) and a link that stalls: nothing is dropped', () => {
  // tor-onion's call: the shim's cap was the burst allowance (128 cells), about 1.3 times what a
  // 300 kbit/s call keeps in flight over that round trip, so a key frame or a link's 300-ms stall
  // filled it, and what it then held went stale in the writer (33-60 video packets a call, each
  // a frame frozen until its retransmission a round trip later). By-hand waits the stall out.
  const cap = new InflightCap({ targetMs: 100, rateSpanMs: 200, ackDelayMs: 100 });
  const stalls = [5000, 11_000, 17_000].map((at) => ({ at: at + 123, forMs: 300 }));
  // The first key frame after the cap's estimates: a call's comes with its setup, into an empty path.
  const send = (now: number): readonly number[] => (now < 2000 && now % 2000 === 500 ? [] : video(now));
  const r = simulateHeld(cap, { rate: 1, oneWayMs: 275 }, send, 20, 150, stalls);
  assert.equal(r.droppedShare, 0, `dropped ${(r.droppedShare * 100).toFixed(1)}% of the offered bytes`);
});

test('a sender offering five times a slow path (80 kbit/s, 700 ms round trip) for a minute: the queue it keeps in the path stays bounded', () => {
  // The tor-congested call's onionturn flows: Chromium starts video at ~300 kbit/s into a circuit
  // that carries a quarter of that. Before, a queue of our own that stood (the cap a little above
  // the path: its rate read from bursty deliveries) was taken for another flow's after 2 s, and
  // the base round trip took it in after 10 s; the cap grew with both, and the queue to 16 s.
  const cap = new InflightCap({ targetMs: 100, rateSpanMs: 200, ackDelayMs: 100 });
  const r = simulateHeld(cap, { rate: 0.02, oneWayMs: 350 }, video, 60, 150);
  assert.ok(r.p95DelayMs <= 2000, `p95 wait in writer and path ${r.p95DelayMs} ms`);
  assert.ok(r.worstDelayMs <= 3500, `worst wait ${r.worstDelayMs} ms (the first flight, INITIAL_CELLS, is 3.2 s of this path)`);
  assert.ok((cap.baseRttMs(60_000) ?? 0) <= 1000, `base round trip ${cap.baseRttMs(60_000)} ms`);
});

test('a queue another flow keeps standing (300 ms, empty now and then) and a sender offering more than the path: the cap does not drain it to a trickle', () => {
  // A drop-tail router that a bulk download keeps full: the least delay of the last 60 s is the
  // bare path's, and the queue stands whatever we send. Before, while the cap refused, none of it
  // was another flow's: the cap drained to rate x base, and the rate it then measured was its own
  // (tor-congested's call: 8 cells in flight, 10 cells a second; here, half the path).
  const foreignMs = (now: number): number => (now % 20_000 < 300 ? 0 : 300);
  const capped = simulate(new InflightCap({ targetMs: 50 }), 40, { offered: 2, foreignMs });
  assert.ok(capped.utilisation > 0.75, `utilisation ${capped.utilisation}`);
  assert.ok(capped.p95 <= 300 + REFUSING_CREDIT_MS + 150, `queue delay p95 ${capped.p95} ms (the other flow's 300 ms included)`);
});

test('mayWrite(vital): vital messages may fill VITAL_CAPS caps, no more (RTCP beyond what the path delivers waits)', () => {
  const c = new InflightCap();
  c.onWrite(0, INITIAL_CELLS * 498);
  assert.equal(c.mayWrite(0, 498), false, 'media: the cap is full');
  assert.equal(c.mayWrite(0, 498, true), true, 'vital: within the looser bound');
  c.onWrite(0, (VITAL_CAPS - 1) * INITIAL_CELLS * 498);
  assert.equal(c.mayWrite(0, 498, true), false, 'beyond VITAL_CAPS caps: refused');
  assert.equal(c.appLimited(0), false, 'and that counts as the cap refusing');
});

test("a burst of our own that queued 2 s in the path is not taken for another flow's queue once it is mostly acknowledged", () => {
  // 100 cells at once into a path that delivers 50 a second (50 ms each way): the last of them
  // report about 2 s of queueing when nearly nothing is in flight any more. Before, the cap
  // compared that delay with the cells in flight at the report (none), took the 2 s for another
  // flow's and added them to the cap (the tor-congested call's first key frame: cap 67 cells,
  // 1.2 s "foreign", while the path delivered 50 a second).
  const c = new InflightCap({ targetMs: 100, rateSpanMs: 200, ackDelayMs: 100 });
  for (let k = 0; k < 100; k++) c.onWrite(0, 498);
  const deliveredAt = (k: number): number => 20 * (k + 1) + 50;
  let received = 0;
  for (let t = 50; t <= 2150; t += 50) {
    // A report written at t - 50 by the receiver arrives at t.
    while (received < 100 && deliveredAt(received) <= t - 50) received++;
    if (received > 0) c.onReport(t, received * 498, deliveredAt(received - 1) + 5000);
  }
  assert.ok(c.queueDelayMs > 1800, `the last cells queued ${c.queueDelayMs} ms`);
  assert.equal(c.inflightCells, 0);
  assert.ok(c.foreignQueueMs(2150) < 100, `foreign queue ${c.foreignQueueMs(2150)} ms`);
  // 50 cells/s x (base round trip 150 + target 100 + acknowledgement delay 100 ms), no more.
  assert.ok(c.capCells(2150) <= Math.ceil((50 * (150 + 100 + 100)) / 1000), `cap ${c.capCells(2150)} cells`);
});
