#!/usr/bin/env node
// Where the CPU of making allocations goes with --workers: `onionturn server --workers N` makes
// --held TCP allocations (REST credentials, 50 in flight, as `npm run bench -- --held-only` does)
// and the CPU each process spent is printed apart (primary, each worker), per allocation, with
// how many connections each worker got. --warm N first makes and drops N allocations, so the
// figures are the steady state rather than the first allocations' JIT warm-up (which each worker
// pays on its own). NODE_CLUSTER_SCHED_POLICY is passed on. A benchmark aid: it asserts nothing.
// --root DIR runs another checkout's (built) server, e.g. the main branch's, for a before/after;
// repeat it to compare several. --coturn adds coturn's turnserver (started as `npm run bench`
// starts it). --rounds N runs every server N times, in turns (a fresh process each time), so a
// before/after and coturn share the machine's noise; a summary gives each server's mean and its
// ratio to coturn's.
// BENCH_NODE_ARGS: extra Node flags for the server (e.g. "--cpu-prof --cpu-prof-dir=DIR"), as in bench-server.
//   node scripts/bench-alloc-split.mjs [--workers 2] [--held 3000] [--warm 0] [--in-flight 50] [--rounds 1] [--coturn] [--root DIR]...
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { ProcessGroup, freePort, sleep, startCoturn, waitFor } from '@onionturn/testkit';
import { prepare, root } from './prepare.mjs';
import { processTree, threadCpuNs } from './proc-cpu.mjs';
import { tcpAllocation } from './tcp-allocation.mjs';

const FLAGS = { '--workers': 'workers', '--held': 'held', '--warm': 'warm', '--in-flight': 'inFlight', '--rounds': 'rounds' };
const opts = { workers: 2, held: 3000, warm: 0, inFlight: 50, rounds: 1 };
const roots = [];
let coturn = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  if (argv[i] === '--root' && argv[i + 1] !== undefined) {
    roots.push(argv[i + 1]);
    continue;
  }
  if (argv[i] === '--coturn') {
    coturn = true;
    i--;
    continue;
  }
  const name = FLAGS[argv[i]];
  if (name === undefined || !/^\d+$/.test(argv[i + 1] ?? '')) {
    console.error(
      `bench-alloc-split: '${argv[i]} ${argv[i + 1] ?? ''}' is not one of --workers N, --held N, --warm N, --in-flight N, --rounds N, --coturn, --root DIR`,
    );
    process.exit(2);
  }
  opts[name] = Number(argv[i + 1]);
}
if (roots.length === 0) roots.push(root);

await prepare('bench-alloc-split');
const SECRET = 'split-secret-0c5e';
const REALM = 'onionturn.test';
const RELAY = { min: 30000, max: 45000 };

const fds = (pid) => readdirSync(`/proc/${pid}/fd`).length;

/** One TCP connection with one authenticated allocation, held. */
function allocate(port, i, sockets) {
  return tcpAllocation({ port, realm: REALM, secret: SECRET, username: `${Math.floor(Date.now() / 1000) + 3600}:split${i}`, sockets }).catch((e) => {
    throw new Error(`allocation ${i} ${e.message}`);
  });
}

async function make(port, n, first, sockets) {
  let next = 0;
  await Promise.all(
    Array.from({ length: opts.inFlight }, async () => {
      while (next < n) await allocate(port, first + next++, sockets);
    }),
  );
}

/** `onionturn server` of checkout `dir`: its pid, port and how to stop it. */
async function startOnionturn(dir) {
  const tmp = mkdtempSync(join(tmpdir(), 'onionturn-split-'));
  writeFileSync(join(tmp, 'secret'), `${SECRET}\n`, { mode: 0o600 });
  const port = await freePort();
  // prettier-ignore
  const server = spawn(process.execPath, [
    ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
    join(dir, 'packages/cli/bin/onionturn.js'), 'server', '--listen', `tcp://127.0.0.1:${port}`, '--realm', REALM,
    '--secret-file', join(tmp, 'secret'), '--relay-ports', `${RELAY.min}-${RELAY.max}`, '--max-allocations-per-user', '100000',
    '--max-allocations', String(opts.held + opts.warm + 1000), '--log-level', 'warn', '--workers', String(opts.workers),
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr.on('data', (c) => (log = (log + c.toString()).slice(-10_000)));
  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM');
      await once(server, 'exit');
    }
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    await waitFor(
      'the server to listen',
      async () => {
        if (server.exitCode !== null) throw new Error(`the server exited (${server.exitCode}): ${log}`);
        const s = connect(port, '127.0.0.1');
        const ok = await new Promise((resolve) => {
          s.once('connect', () => resolve(true));
          s.once('error', () => resolve(false));
        });
        s.destroy();
        return ok;
      },
      60_000,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  // The primary listens once the first worker does: a moment for the others (as npm run bench).
  await sleep(opts.workers > 1 ? 3000 : 1000);
  const pids = opts.workers > 1 ? processTree(server.pid) : [server.pid];
  const names = pids.map((_, i) => (opts.workers === 1 ? 'server' : i === 0 ? 'primary' : `worker ${i - 1}`));
  return { port, pids, names, stop };
}

async function startBaseline() {
  const group = new ProcessGroup();
  const c = await startCoturn(group, { secrets: [SECRET], realm: REALM, relayPorts: RELAY, verbose: false });
  await sleep(1000);
  return { port: c.port, pids: [c.process.pid], names: ['turnserver'], stop: () => group.stopAll() };
}

/** One server from start to stop: CPU per allocation of each of its processes while it makes --held. */
async function runOne(server) {
  const s = server.coturn ? await startBaseline() : await startOnionturn(server.dir);
  try {
    if (opts.warm > 0) {
      const warm = [];
      await make(s.port, opts.warm, 1_000_000, warm);
      for (const w of warm) w.destroy();
      await sleep(1500);
    }
    const cpu0 = s.pids.map(threadCpuNs);
    const fd0 = s.pids.map(fds);
    const held = [];
    const t0 = performance.now();
    try {
      await make(s.port, opts.held, 0, held);
      const seconds = (performance.now() - t0) / 1000;
      await sleep(300);
      const us = s.pids.map((p, i) => (threadCpuNs(p) - cpu0[i]) / 1000 / opts.held);
      // Two descriptors per allocation (its TCP connection, its relay socket).
      const allocations = s.pids.map((p, i) => Math.round((fds(p) - fd0[i]) / 2));
      return { seconds, us, allocations, names: s.names, total: us.reduce((a, b) => a + b, 0) };
    } finally {
      for (const h of held) h.destroy();
    }
  } finally {
    await s.stop();
  }
}

const servers = [...(coturn ? [{ name: 'coturn', coturn: true }] : []), ...roots.map((dir) => ({ name: dir, dir }))];
const results = new Map(servers.map((s) => [s.name, []]));
console.log(
  `${opts.held} allocations, ${opts.inFlight} in flight, after ${opts.warm} warm-up; onionturn --workers ${opts.workers}, scheduling ${process.env.NODE_CLUSTER_SCHED_POLICY ?? 'default'}; ${opts.rounds} round(s)`,
);
for (let round = 0; round < opts.rounds; round++) {
  // Rotated each round, so no server always runs first (or right after another's exit).
  const order = servers.map((_, i) => servers[(i + round) % servers.length]);
  for (const server of order) {
    const r = await runOne(server);
    results.get(server.name).push(r);
    console.log(`round ${round + 1}: ${server.name}: made in ${r.seconds.toFixed(2)} s, load average ${loadavg()[0].toFixed(2)}`);
    r.names.forEach((n, i) => console.log(`  ${n.padEnd(10)} ${r.us[i].toFixed(0).padStart(5)} us/alloc, ${r.allocations[i]} allocations`));
    if (r.names.length > 1) console.log(`  ${'total'.padEnd(10)} ${r.total.toFixed(0).padStart(5)} us/alloc`);
  }
}
if (opts.rounds > 1 || servers.length > 1) {
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const base = coturn ? mean(results.get('coturn').map((r) => r.total)) : undefined;
  console.log('\nCPU per allocation, each round and the mean (us):');
  for (const [name, rs] of results) {
    const m = mean(rs.map((r) => r.total));
    const ratio = base !== undefined && name !== 'coturn' ? `  ${(m / base).toFixed(2)}x coturn` : '';
    console.log(`  ${rs.map((r) => r.total.toFixed(0).padStart(5)).join(' ')}  mean ${m.toFixed(0).padStart(5)}${ratio}  ${name}`);
  }
}
