#!/usr/bin/env node
// `npm run bench:client`: turnutils_uclient over UDP through the shim (app -> onionturn client
// -> microsocks -> coturn over TCP) side by side with `turnutils_uclient -t` straight to coturn.
// Reports delivered packets/s, loss, RTT, and CPU microseconds per message of the shim process
// and of coturn (from /proc/PID/stat). uclient's own RTT figure is coarse (it averages whole
// milliseconds), so the added latency is also measured here: sequential STUN Binding round trips
// timed with hrtime, straight to coturn (UDP and TCP) and through shim + microsocks, on the idle
// machine and while uclient's load runs (from BENCH_LOADED_PROBE_DELAY_MS, default 2000, when its
// allocations are made, 10 ms apart so they sample the run), where queueing in the shim shows.
// Everything on loopback, started and stopped here by PID.
//   BENCH_CLIENTS (10), BENCH_MESSAGES per client (500), BENCH_LENGTH (120), BENCH_INTERVAL_MS (5)
//   BENCH_SHIM_NODE_ARGS: extra node flags for the shim, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
//   (NODE_OPTIONS refuses --cpu-prof; the profile is written when the shim is stopped)
//   BENCH_PROFILE=1: also samples shim and coturn with perf during the runs and reports where
//   their CPU per message goes (kernel, runtime, own code; see scripts/cpu-split.mjs)
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect } from 'node:net';
import { MessageBuilder, MessageClass, Method } from '@onionturn/protocol';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_PERF_FLAGS, PROFILE, profileDuring, removePerfMap, requirePerf } from './cpu-split.mjs';
import { TICK_US, statCpuTicks } from './proc-cpu.mjs';
import { ProcessGroup, runUclient, startCoturn, startMicrosocks, startTurnutilsPeer, waitFor } from '../packages/testkit/dist/src/index.js';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const BIN = join(root, 'packages', 'cli', 'bin', 'onionturn.js');
const SECRET = 'bench-secret';
const clients = Number(process.env.BENCH_CLIENTS ?? 10);
const messages = Number(process.env.BENCH_MESSAGES ?? 500);
const length = Number(process.env.BENCH_LENGTH ?? 120);
const intervalMs = Number(process.env.BENCH_INTERVAL_MS ?? 5);
const shimNodeArgs = (process.env.BENCH_SHIM_NODE_ARGS ?? '').split(/\s+/).filter((x) => x !== '');

const cpuUs = (pid) => statCpuTicks(pid) * TICK_US;

function transmitSeconds(output) {
  const m = [...output.matchAll(/Total transmit time is (\d+)/g)].pop();
  return m ? Number(m[1]) : NaN;
}

async function measure(name, group, opts, pids) {
  const before = pids.map((p) => cpuUs(p.pid));
  const t0 = Date.now();
  const run = () => runUclient(group, { ...opts, clients, messages, length, intervalMs, noRtcp: true, secret: SECRET, peer: opts.peer, timeoutMs: 120_000 });
  const profiled = await profileDuring(
    pids.filter((p) => p.own !== undefined),
    run,
  );
  const r = profiled.result;
  const wall = (Date.now() - t0) / 1000;
  const cpu = pids.map((p, i) => ({ name: p.name, us: cpuUs(p.pid) - before[i] }));
  const moved = (r.sent ?? 0) + (r.received ?? 0);
  const secs = transmitSeconds(r.output);
  const perMessage = (us) => Number((us / moved).toFixed(1));
  return {
    path: name,
    sent: r.sent,
    received: r.received,
    lossPercent: r.lossPercent,
    rttMs: r.rttMs,
    deliveredPerSec: Math.round((r.received ?? 0) / secs),
    transmitSeconds: secs,
    wallSeconds: Number(wall.toFixed(1)),
    cpuUsPerMessage: Object.fromEntries(cpu.map((c) => [c.name, perMessage(c.us)])),
    ...(PROFILE
      ? {
          cpuSplitUsPerMessage: Object.fromEntries(
            Object.entries(profiled.splits).map(([n, sp]) => {
              const us = cpu.find((c) => c.name === n)?.us ?? NaN;
              return [n, { kernel: perMessage(us * sp.kernel), runtime: perMessage(us * sp.runtime), own: perMessage(us * sp.own), samples: sp.samples }];
            }),
          ),
        }
      : {}),
  };
}

const PROBES = Number(process.env.BENCH_PROBES ?? 300);

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Sequential Binding round trips (one in flight, `gapMs` apart), after 20 warm-up ones; times in ms. */
async function bindingRtt(name, transport, port, gapMs = 0) {
  const request = () => new MessageBuilder(Method.Binding, MessageClass.Request).build();
  let send;
  let close;
  let next;
  if (transport === 'udp') {
    const s = createSocket('udp4');
    await new Promise((r) => s.bind(0, '127.0.0.1', r));
    s.on('message', () => next?.());
    send = (m) => s.send(m, port, '127.0.0.1');
    close = () => s.close();
  } else {
    const s = connect({ host: '127.0.0.1', port, noDelay: true });
    await once(s, 'connect');
    s.on('data', () => next?.()); // one response per request; Binding responses fit one read here
    send = (m) => s.write(m);
    close = () => s.destroy();
  }
  const times = [];
  try {
    for (let i = 0; i < PROBES + 20; i++) {
      const answered = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no Binding response within 5 s`)), 5000);
        next = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      const t0 = process.hrtime.bigint();
      send(request());
      await answered;
      if (i >= 20) times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
    }
  } finally {
    close();
  }
  times.sort((a, b) => a - b);
  return { path: name, probes: times.length, medianMs: Number(quantile(times, 0.5).toFixed(3)), p95Ms: Number(quantile(times, 0.95).toFixed(3)) };
}

const LOADED_PROBE_DELAY_MS = Number(process.env.BENCH_LOADED_PROBE_DELAY_MS ?? 2000);
const LOADED_PROBE_GAP_MS = 10;

/** Binding round trips while a uclient run is under way (it started when this was called). */
async function underLoad(probe) {
  await new Promise((r) => setTimeout(r, LOADED_PROBE_DELAY_MS));
  return probe();
}

if (PROFILE) requirePerf();
const group = new ProcessGroup();
let shimPid;
try {
  const coturn = await startCoturn(group, { secrets: [SECRET], verbose: false });
  const peer = await startTurnutilsPeer(group);
  const socks = await startMicrosocks(group);
  const shim = group.spawn('onionturn client', process.execPath, [
    ...(PROFILE ? NODE_PERF_FLAGS : []),
    ...shimNodeArgs,
    BIN,
    'client',
    '--no-status',
    '--listen',
    '127.0.0.1:0',
    '--server',
    `tcp://127.0.0.1:${coturn.port}`,
    '--allow-plaintext-upstream',
    '--allow-non-tor-socks',
    '--socks',
    `127.0.0.1:${socks.port}`,
    '--new-flows-per-second',
    '0',
    '--log-level',
    'warn',
  ]);
  shimPid = shim.pid;
  let stdout = '';
  shim.child.stdout.on('data', (c) => (stdout += c.toString()));
  const shimPort = Number(await waitFor('shim to print its iceServers', () => /turn:127\.0\.0\.1:(\d+)\?transport=udp/.exec(stdout)?.[1], 10_000, 50));
  const peerAddr = { host: '127.0.0.1', port: peer.port };
  const [direct, directLoaded] = await Promise.all([
    measure('uclient -t -> coturn (TCP, direct)', group, { server: { host: '127.0.0.1', port: coturn.port }, tcp: true, peer: peerAddr }, [
      { name: 'coturn', pid: coturn.process.pid, own: { binary: 'turnserver' } },
    ]),
    underLoad(() => bindingRtt('Binding TCP -> coturn (direct), under load', 'tcp', coturn.port, LOADED_PROBE_GAP_MS)),
  ]);
  const [shimmed, shimmedLoaded] = await Promise.all([
    measure('uclient UDP -> shim -> microsocks -> coturn', group, { server: { host: '127.0.0.1', port: shimPort }, tcp: false, peer: peerAddr }, [
      { name: 'shim', pid: shim.pid, own: { jsRoot: root } },
      { name: 'coturn', pid: coturn.process.pid, own: { binary: 'turnserver' } },
      { name: 'microsocks', pid: socks.process.pid },
    ]),
    underLoad(() => bindingRtt('Binding UDP -> shim -> microsocks -> coturn, under load', 'udp', shimPort, LOADED_PROBE_GAP_MS)),
  ]);
  // Idle machine state for latency: no uclient load running.
  const rtt = [
    await bindingRtt('Binding UDP -> coturn (direct)', 'udp', coturn.port),
    await bindingRtt('Binding TCP -> coturn (direct)', 'tcp', coturn.port),
    await bindingRtt('Binding UDP -> shim -> microsocks -> coturn', 'udp', shimPort),
  ];
  const added = Number((rtt[2].medianMs - rtt[1].medianMs).toFixed(3));
  console.log(
    JSON.stringify(
      {
        shape: { clients, messagesPerClient: messages, length, intervalMs },
        results: [direct, shimmed],
        bindingRtt: rtt,
        addedMedianRttMs: added,
        bindingRttUnderLoad: [directLoaded, shimmedLoaded],
      },
      null,
      2,
    ),
  );
} finally {
  await group.stopAll();
  if (shimPid !== undefined) removePerfMap(shimPid);
}
