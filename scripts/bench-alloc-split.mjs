#!/usr/bin/env node
// Where the CPU of making allocations goes with --workers: `onionturn server --workers N` makes
// --held TCP allocations (REST credentials, 50 in flight, as `npm run bench -- --held-only` does)
// and the CPU each process spent is printed apart (primary, each worker), per allocation, with
// how many connections each worker got. --warm N first makes and drops N allocations, so the
// figures are the steady state rather than the first allocations' JIT warm-up (which each worker
// pays on its own). NODE_CLUSTER_SCHED_POLICY is passed on. A benchmark aid: it asserts nothing.
// --root DIR runs another checkout's (built) server, e.g. the main branch's, for a before/after.
// BENCH_NODE_ARGS: extra Node flags for the server (e.g. "--cpu-prof --cpu-prof-dir=DIR"), as in bench-server.
//   node scripts/bench-alloc-split.mjs [--workers 2] [--held 3000] [--warm 0] [--in-flight 50] [--root DIR]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { freePort, sleep, waitFor } from '@onionturn/testkit';
import { prepare, root } from './prepare.mjs';
import { tcpAllocation } from './tcp-allocation.mjs';

const FLAGS = { '--workers': 'workers', '--held': 'held', '--warm': 'warm', '--in-flight': 'inFlight' };
const opts = { workers: 2, held: 3000, warm: 0, inFlight: 50 };
let serverRoot = root;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  if (argv[i] === '--root' && argv[i + 1] !== undefined) {
    serverRoot = argv[i + 1];
    continue;
  }
  const name = FLAGS[argv[i]];
  if (name === undefined || !/^\d+$/.test(argv[i + 1] ?? '')) {
    console.error(`bench-alloc-split: '${argv[i]} ${argv[i + 1] ?? ''}' is not one of --workers N, --held N, --warm N, --in-flight N, --root DIR`);
    process.exit(2);
  }
  opts[name] = Number(argv[i + 1]);
}

await prepare('bench-alloc-split');
const SECRET = 'split-secret-0c5e';
const REALM = 'onionturn.test';
const dir = mkdtempSync(join(tmpdir(), 'onionturn-split-'));
writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
const port = await freePort();
// prettier-ignore
const server = spawn(process.execPath, [
  ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
  join(serverRoot, 'packages/cli/bin/onionturn.js'), 'server', '--listen', `tcp://127.0.0.1:${port}`, '--realm', REALM,
  '--secret-file', join(dir, 'secret'), '--relay-ports', '30000-45000', '--max-allocations-per-user', '100000',
  '--max-allocations', String(opts.held + opts.warm + 1000), '--log-level', 'warn', '--workers', String(opts.workers),
], { stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
server.stderr.on('data', (c) => (log = (log + c.toString()).slice(-10_000)));

const children = (pid) =>
  readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
/** Time on CPU of all the process's threads (JIT and GC threads too), ns. */
const cpuNs = (pid) =>
  readdirSync(`/proc/${pid}/task`).reduce((a, t) => {
    try {
      return a + Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      return a;
    }
  }, 0);
const fds = (pid) => readdirSync(`/proc/${pid}/fd`).length;

/** One TCP connection with one authenticated allocation, held. */
function allocate(i, sockets) {
  return tcpAllocation({ port, realm: REALM, secret: SECRET, username: `${Math.floor(Date.now() / 1000) + 3600}:split${i}`, sockets }).catch((e) => {
    throw new Error(`allocation ${i} ${e.message}`);
  });
}

async function make(n, first, sockets) {
  let next = 0;
  await Promise.all(
    Array.from({ length: opts.inFlight }, async () => {
      while (next < n) await allocate(first + next++, sockets);
    }),
  );
}

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
  // The primary listens once the first worker does: a moment for the others (as npm run bench).
  await sleep(3000);
  if (opts.warm > 0) {
    const warm = [];
    await make(opts.warm, 1_000_000, warm);
    for (const s of warm) s.destroy();
    await sleep(1500);
  }
  const pids = [server.pid, ...(opts.workers > 1 ? children(server.pid) : [])];
  const names = pids.map((_, i) => (opts.workers === 1 ? 'server' : i === 0 ? 'primary' : `worker ${i - 1}`));
  const cpu0 = pids.map(cpuNs);
  const fd0 = pids.map(fds);
  const held = [];
  const t0 = performance.now();
  await make(opts.held, 0, held);
  const seconds = (performance.now() - t0) / 1000;
  await sleep(300);
  const us = pids.map((p, i) => (cpuNs(p) - cpu0[i]) / 1000 / opts.held);
  console.log(
    `${serverRoot}: ${opts.held} allocations, ${opts.inFlight} in flight, after ${opts.warm} warm-up; --workers ${opts.workers}, scheduling ${process.env.NODE_CLUSTER_SCHED_POLICY ?? 'default'}: made in ${seconds.toFixed(2)} s`,
  );
  // Two descriptors per allocation (its TCP connection, its relay socket).
  pids.forEach((p, i) => console.log(`  ${names[i].padEnd(9)} ${us[i].toFixed(0).padStart(5)} us/alloc, ${Math.round((fds(p) - fd0[i]) / 2)} allocations`));
  console.log(
    `  ${'total'.padEnd(9)} ${us
      .reduce((a, b) => a + b, 0)
      .toFixed(0)
      .padStart(5)} us/alloc`,
  );
  for (const s of held) s.destroy();
} finally {
  server.kill('SIGTERM');
  await once(server, 'exit');
  rmSync(dir, { recursive: true, force: true });
}
