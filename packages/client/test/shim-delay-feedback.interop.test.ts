// The shim<->server delay extension (issue 14, deliverable 3) between the real parts: coturn's
// turnutils_uclient (no congestion control, 1000-byte messages, UDP to the shim in pass-through)
// through the shim, a "Tor" that is a SOCKS5 forwarder with a 64 kB/s bottleneck each way and a
// queue as deep as need be (where tor's circuit queues keep a backlog), to `onionturn server` and
// turnutils_peer (an echo). Sent at about twice what the path carries:
// - with the extension (the default), both ends negotiate it, reports flow both ways (the
//   metrics say so), and the backlog waits in our writers, where the time bound drops it: the
//   round trip stays bounded;
// - with `onionturn server --no-delay-feedback` the same run's round trip grows with the backlog
//   in the path.
// A plain client straight to the server (no shim) is covered in the server's queue-delay test.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessGroup, freePort, runUclient, startServer, startTurnutilsPeer } from '@onionturn/testkit';
import { Shim, parseUpstream } from '../src/index.js';
import { captureLogger, shapingSocks } from './helpers.js';

const SECRET = 'delay-feedback-secret';
/** The path's bottleneck each way: 64 kB/s, about 60 of uclient's 1000-byte messages a second. */
const RATE = 64_000;
/** Twice that, for 4 s. */
const PER_SECOND = 125;
const SECONDS = 4;

const cleanups: (() => Promise<void> | void)[] = [];
const group = new ProcessGroup();
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await group.stopAll();
});

/** A sum of the lines of `name` (with `label` in them, if given) in a Prometheus text page. */
function metric(text: string, name: string, label = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) if (line.includes(label)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

interface Run {
  readonly sent: number;
  readonly received: number;
  readonly rttAvg: number;
  readonly rttMax: number;
  readonly server: string;
  readonly shim: Shim;
  readonly output: string;
}

async function run(serverArgs: readonly string[]): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'onionturn-df-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const metricsPort = await freePort();
  const [server, peer] = await Promise.all([
    startServer(
      group,
      ['--secret-file', secretFile, '--allow-loopback-peers', '--metrics', `127.0.0.1:${metricsPort}`, ...serverArgs],
      {},
      { listen: ['tcp://127.0.0.1:0'] },
    ),
    startTurnutilsPeer(group),
  ]);
  const socks = await shapingSocks(cleanups, RATE);
  const upstream = parseUpstream(`tcp://127.0.0.1:${server.tcp}`);
  assert.ok(upstream.ok);
  const shim = new Shim({
    listen: { host: '127.0.0.1', port: 0 },
    servers: [upstream.value],
    socks: { host: '127.0.0.1', port: socks.port },
    logger: captureLogger().logger,
    tcp: false,
  });
  await shim.start();
  cleanups.push(() => shim.stop());
  const r = await runUclient(group, {
    server: { host: '127.0.0.1', port: shim.address.port },
    peer: { host: peer.host, port: peer.port },
    secret: SECRET,
    tcp: false,
    noRtcp: true,
    messages: PER_SECOND * SECONDS,
    length: 1000,
    intervalMs: Math.round(1000 / PER_SECOND),
    timeoutMs: 60_000,
  });
  const max = [...r.output.matchAll(/Average round trip delay [\d.]+ ms; min = \d+ ms, max = (\d+) ms/g)].pop();
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return {
    sent: r.sent ?? 0,
    received: r.received ?? 0,
    rttAvg: r.rttMs ?? NaN,
    rttMax: max ? Number(max[1]) : NaN,
    server: text,
    shim,
    output: r.output.slice(-1200),
  };
}

test('twice what the path carries: with the extension reports flow both ways and the round trip stays bounded; without it, it grows', async () => {
  const on = await run([]);
  const off = await run(['--no-delay-feedback']);
  const figures = `with: avg ${on.rttAvg} ms max ${on.rttMax} ms, ${on.received}/${on.sent}; without: avg ${off.rttAvg} ms max ${off.rttMax} ms, ${off.received}/${off.sent}`;
  // Negotiated, and reports went both ways.
  // uclient opens two allocations over UDP even with -c: a flow each, each its own stream.
  const negotiated = metric(on.server, 'onionturn_delay_feedback_negotiated_total');
  assert.ok(negotiated >= 1, figures);
  assert.ok(metric(on.server, 'onionturn_delay_feedback_reports_total', 'direction="received"') > 20, `server received reports (${figures})`);
  assert.ok(metric(on.server, 'onionturn_delay_feedback_reports_total', 'direction="sent"') > 20, `server sent reports (${figures})`);
  const df = on.shim.stats.delayFeedback;
  assert.equal(df.negotiated, negotiated, 'as many streams on the shim side');
  assert.ok(df.reportsSent > 20 && df.reportsReceived > 20, `shim reports ${df.reportsSent} sent, ${df.reportsReceived} received`);
  // Off: nothing of it on the wire.
  assert.equal(metric(off.server, 'onionturn_delay_feedback_negotiated_total'), 0);
  assert.equal(off.shim.stats.delayFeedback.negotiated, 0);
  assert.equal(off.shim.stats.delayFeedback.reportsSent, 0, 'no reports to a server that did not echo the offer');
  // What the user sees: a bounded round trip with it, a growing one without.
  assert.ok(on.received > 0, on.output);
  assert.ok(on.rttAvg < 1000 && on.rttMax < 2500, `with the extension: ${figures}\n${on.output}`);
  assert.ok(off.rttMax > 2 * on.rttMax && off.rttAvg > 2 * on.rttAvg, `without it the delay grows: ${figures}`);
  console.log(`delay-feedback interop: ${figures}`);
});
