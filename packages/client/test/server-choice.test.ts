// The choice among upstream servers and their health, without sockets, on a fake clock: failover,
// round robin and random among healthy servers; a failed server skipped until its retry time,
// which doubles per failure in a row; one probe when it is due; the least recently failed when
// nothing is healthy. And the flow table's walk over them: one dead server costs new flows one dial.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../src/clock.js';
import { FlowTable } from '../src/flow-table.js';
import { ServerChoice, type ServerChoiceMode } from '../src/server-choice.js';
import type { DialResult } from '../src/upstream-dialer.js';
import type { UpstreamServer } from '../src/endpoints.js';

const none: ReadonlySet<number> = new Set();

/** The servers n new flows start with, each flow's dial succeeding. */
function firstPicks(c: ServerChoice, n: number, now = 0): number[] {
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    const i = c.next(none, now) as number;
    c.record(i, 'ok', now);
    out.push(i);
  }
  return out;
}

test('failover: every flow takes the server that worked last; the first given at first', () => {
  const c = new ServerChoice(3, { mode: 'failover' });
  assert.deepEqual(firstPicks(c, 3), [0, 0, 0]);
  // Server 1 worked for a flow (after 0 failed for it): new flows start there.
  c.record(0, 'failed', 0);
  c.record(1, 'ok', 0);
  assert.deepEqual(firstPicks(c, 2, 1), [1, 1]);
});

test('round robin: new flows take the healthy servers in turn, skipping one in backoff', () => {
  const c = new ServerChoice(3, { mode: 'round-robin', retryMs: 1000 });
  assert.deepEqual(firstPicks(c, 4), [0, 1, 2, 0]);
  c.record(2, 'failed', 10);
  assert.deepEqual(firstPicks(c, 4, 20), [1, 0, 1, 0]);
});

test('random: uniform over the healthy servers only', () => {
  let r = 0;
  const c = new ServerChoice(4, { mode: 'random', random: () => r });
  c.record(1, 'failed', 0);
  const picks = [0, 0.34, 0.67, 0.99].map((x) => ((r = x), c.next(none, 1)));
  assert.deepEqual(picks, [0, 2, 3, 3]);
});

test('a failed server is skipped until its retry time, which doubles per failure in a row; a success resets it', () => {
  const c = new ServerChoice(2, { mode: 'round-robin', retryMs: 1000, maxRetryMs: 3000 });
  c.record(0, 'failed', 0);
  assert.deepEqual(c.view(0, 400), { healthy: false, failuresInRow: 1, retryInMs: 600 });
  assert.deepEqual(firstPicks(c, 3, 999), [1, 1, 1]);
  // Due: one flow probes it; while that dial runs, others do not pile onto it.
  assert.equal(c.next(none, 1000), 0);
  assert.equal(c.next(none, 1000), 1);
  c.record(0, 'failed', 1500);
  assert.equal(c.view(0, 1500).retryInMs, 2000, 'second failure in a row: twice the wait');
  c.record(0, 'failed', 4000);
  assert.equal(c.view(0, 4000).retryInMs, 3000, 'capped at maxRetryMs');
  c.record(0, 'ok', 7000);
  assert.deepEqual(c.view(0, 7000), { healthy: true, failuresInRow: 0, retryInMs: undefined });
});

test("a failure that is not the server's (the SOCKS proxy) leaves its health alone and ends a probe", () => {
  const c = new ServerChoice(1, { mode: 'failover', retryMs: 1000 });
  c.record(0, 'failed', 0);
  assert.equal(c.next(none, 1000), 0);
  c.record(0, 'unknown', 1000);
  assert.deepEqual(c.view(0, 1000), { healthy: true, failuresInRow: 1, retryInMs: undefined });
  assert.equal(c.next(none, 1000), 0, 'the probe ended: the next flow may probe');
});

test('nothing healthy: the least recently failed first, then the rest; each server once per flow', () => {
  const c = new ServerChoice(3, { mode: 'failover', retryMs: 60_000 });
  c.record(1, 'failed', 10);
  c.record(2, 'failed', 20);
  c.record(0, 'failed', 30);
  const tried = new Set<number>();
  const order: (number | undefined)[] = [];
  for (let k = 0; k < 4; k++) {
    const i = c.next(tried, 40);
    order.push(i);
    if (i !== undefined) tried.add(i);
  }
  assert.deepEqual(order, [1, 2, 0, undefined]);
});

test('a flow falling back takes the healthy servers before those in backoff', () => {
  const c = new ServerChoice(3, { mode: 'round-robin', retryMs: 60_000 });
  c.record(1, 'failed', 0);
  assert.equal(c.next(none, 1), 0);
  // Server 0 failed for this flow: server 2 (healthy) before server 1 (in backoff).
  c.record(0, 'failed', 2);
  assert.equal(c.next(new Set([0]), 2), 2);
  assert.equal(c.next(new Set([0, 2]), 2), 1);
});

const SERVERS: UpstreamServer[] = [0, 1].map((i) => ({ transport: 'tcp', host: `s${i}.onion`, port: 443, label: `s${i}.onion:443` }) as UpstreamServer);

for (const mode of ['failover', 'round-robin', 'random'] as ServerChoiceMode[]) {
  test(`the flow table's walk (${mode}): one dead server costs new flows one failed dial in all, and every flow opens`, async () => {
    const clock = new ManualClock();
    const dialed: number[] = [];
    let failovers = 0;
    const t = new FlowTable({
      clock,
      maxFlows: 100,
      isolation: 'per-flow',
      tickMs: 1000,
      pacing: { perSecond: 0, onDelayed: () => {}, onGivenUp: () => {} },
      // Server 0 is dead: Tor answers "host unreachable" for it.
      servers: new ServerChoice(2, { mode, random: () => 0 }),
      onFailover: () => failovers++,
      connect: (index): Promise<DialResult> => {
        dialed.push(index);
        if (index === 0) return Promise.resolve({ ok: false, error: { code: 'socks-reply', reason: 'host unreachable', reply: 4 } });
        return Promise.resolve({ ok: true, socket: { destroy() {} } as never, head: Buffer.alloc(0), server: SERVERS[1] as UpstreamServer });
      },
    });
    for (let k = 0; k < 20; k++) {
      const r = await t.openStream(
        k,
        () => false,
        () => {},
      );
      assert.equal(r.kind, 'open');
      clock.advance(500);
    }
    assert.equal(dialed.filter((i) => i === 0).length, 1, `dials: ${dialed.join(',')}`);
    assert.equal(failovers, 1);
  });
}

test('a take-over (mobility) goes back to the server that holds the allocation, and only there', async () => {
  const clock = new ManualClock();
  const dialed: number[] = [];
  let up = true;
  const t = new FlowTable({
    clock,
    maxFlows: 100,
    isolation: 'per-flow',
    tickMs: 1000,
    pacing: { perSecond: 0, onDelayed: () => {}, onGivenUp: () => {} },
    servers: new ServerChoice(2, { mode: 'round-robin', random: () => 0 }),
    connect: (index): Promise<DialResult> => {
      dialed.push(index);
      if (!up) return Promise.resolve({ ok: false, error: { code: 'socks-reply', reason: 'host unreachable', reply: 4 } });
      return Promise.resolve({ ok: true, socket: { destroy() {} } as never, head: Buffer.alloc(0), server: SERVERS[index] as UpstreamServer });
    },
  });
  const first = await t.openStream(
    1,
    () => false,
    () => {},
  );
  assert.ok(first.kind === 'open');
  for (let k = 0; k < 3; k++) {
    const again = await t.openStream(
      1,
      () => false,
      () => {},
      undefined,
      undefined,
      first.index,
    );
    assert.ok(again.kind === 'open' && again.index === first.index, 'round robin would have moved on');
  }
  up = false;
  const failed = await t.openStream(
    1,
    () => false,
    () => {},
    undefined,
    undefined,
    first.index,
  );
  assert.equal(failed.kind, 'failed', 'no walk to the other server, which has no such allocation');
  assert.deepEqual(dialed, [first.index, first.index, first.index, first.index, first.index]);
});
