#!/usr/bin/env node
// `npm run bench`: coturn's `turnserver` and `onionturn server` side by side, started the same way
// (REST secret, loopback peers allowed, same relay port range), under the same
// `turnutils_uclient -c -t` runs against `turnutils_peer`: 1/10/100 clients, 100/1000-byte
// messages, paced (-z 20) and flood (-z 0). Then the cost of allocations: CPU per TCP allocation
// and RSS per held allocation with 1,000 held. A benchmark, not a test: it prints, asserts nothing.
//   BENCH_PACED_MESSAGES (default 250), BENCH_FLOOD_MESSAGES (default 1000), BENCH_HELD (default 1000)
//   BENCH_SERVERS (default "coturn,onionturn"), BENCH_SHAPES (default all; e.g. "1x100x20,100x1000x0"
//   as CLIENTS x BYTES x Z) narrow a run while working on one case.
//   BENCH_PROFILE=1 also samples each server with perf during the runs and prints where its CPU
//   per round trip goes: kernel, runtime (Node/V8/libuv/libc; coturn's libraries), own code.
// Flags (override the variables): --held N (e.g. `npm run bench -- --held 10000`), --held-only
// (skip the round-trip rows: the warm-up, then the allocation cost), --servers coturn,onionturn.
// --workers 1,2: the onionturn rows with each worker count (onionturn, onionturn-w2) beside coturn.
// --loaders 1,2,4: server-limited rows instead of the one-uclient rows: that many uclients at once
// per shape (bench-loaders.mjs; BENCH_LOADER_PACED_MESSAGES default 750, BENCH_LOADER_FLOOD_MESSAGES
// default BENCH_FLOOD_MESSAGES), their delivered round trips summed, and each server's best.
// --json FILE: the rows (and the allocation cost) as JSON.
// Beside the held allocations a paced uclient load runs (BENCH_BESIDE_CLIENTS, default 10
// clients x 100 B every 20 ms): its loss shows whether relaying still works with them all held.
// Before it, the steady state: the server's CPU while they are only held (BENCH_HOLD_SECONDS,
// default 10, from 5 s after the making), then while each is refreshed once; with a Refresh every 540 s per allocation that
// is the server's CPU per second per held allocation.
// For large --held the bench raises its own descriptor limit (prlimit on its own pid), which the
// servers, the peer and uclient it starts inherit; nothing else is touched.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { readFileSync, readdirSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessGroup, TOOLS, freePort, requireTool, runUclient, sleep, startCoturn, startTurnutilsPeer, waitFor } from '@onionturn/testkit';
import { RATE_WINDOW_S, runLoaders } from './bench-loaders.mjs';
import { NODE_PERF_FLAGS, PROFILE, profileDuring, removePerfMap, requirePerf } from './cpu-split.mjs';
import { prepare, root } from './prepare.mjs';
import { TICK_US, processTree, statCpuTicks, sumOverTree, treeCpuNs } from './proc-cpu.mjs';
import { tcpAllocation } from './tcp-allocation.mjs';

await prepare('bench');
const SECRET = 'bench-secret-6b1d93f0';
const REALM = 'onionturn.test';
const RELAY = { min: 30000, max: 45000 };
const PACED = Number(process.env.BENCH_PACED_MESSAGES ?? 250);
const FLOOD = Number(process.env.BENCH_FLOOD_MESSAGES ?? 1000);
const ARGS = parseArgs(process.argv.slice(2));
const HELD = Number(ARGS.held ?? process.env.BENCH_HELD ?? 1000);
const HELD_ONLY = ARGS.heldOnly === true;
const BESIDE_CLIENTS = Number(process.env.BENCH_BESIDE_CLIENTS ?? 10);
/** How long the held allocations are watched doing nothing (the steady state's timers). */
const HOLD_SECONDS = Number(process.env.BENCH_HOLD_SECONDS ?? 10);
/**
 * A client's Refresh interval in the steady-state column: the default 600 s lifetime refreshed a
 * minute before it ends, as libwebrtc does.
 */
const REFRESH_INTERVAL_S = 540;

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v.startsWith('--')) {
        const example = {
          '--rates': '20000,40000,80000',
          '--held': '1000',
          '--servers': 'coturn,onionturn',
          '--workers': '1,2',
          '--loaders': '1,2,4',
          '--json': 'bench.json',
        }[flag];
        console.error(`bench: ${flag} wants a value (e.g. ${flag} ${example})`);
        process.exit(2);
      }
      return v;
    };
    if (flag === '--held') out.held = value();
    else if (flag === '--held-only') out.heldOnly = true;
    else if (flag === '--servers') out.servers = value();
    else if (flag === '--workers') out.workers = value();
    else if (flag === '--loaders') out.loaders = value();
    else if (flag === '--json') out.json = value();
    else if (flag === '--rates') out.rates = value();
    else {
      console.error(
        `bench: unknown argument ${argv[i]} (known: --held N, --held-only, --servers coturn,onionturn,onionturn-w2, --workers 1,2, --loaders 1,2,4, --rates 20000,40000, --json FILE)`,
      );
      process.exit(2);
    }
  }
  if (out.held !== undefined && !/^\d+$/.test(out.held)) {
    console.error(`bench: --held wants a count of allocations, got '${out.held}'`);
    process.exit(2);
  }
  for (const [flag, what] of [
    ['workers', 'worker counts for the onionturn rows, e.g. --workers 1,2'],
    ['loaders', 'counts of uclient processes run at once, e.g. --loaders 1,2,4'],
    ['rates', 'offered round trips a second, ascending, e.g. --rates 20000,40000,80000'],
  ]) {
    if (out[flag] === undefined) continue;
    if (!/^[1-9]\d*(,[1-9]\d*)*$/.test(out[flag])) {
      console.error(`bench: --${flag} wants ${what}; got '${out[flag]}'`);
      process.exit(2);
    }
    out[flag] = [...new Set(out[flag].split(',').map(Number))];
  }
  return out;
}

/** This process's open-files limit (soft, hard), from /proc/self/limits. */
function fdLimit() {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const n = (x) => (x === 'unlimited' ? Infinity : Number(x));
  return m ? { soft: n(m[1]), hard: n(m[2]) } : { soft: 1024, hard: 1024 };
}

/**
 * Enough descriptors for `held` allocations: the bench holds one TCP connection each, a server
 * a TCP connection and a relay socket each. Raised on this process only (prlimit --pid), before
 * any server starts, so the servers it spawns inherit it (coturn sizes itself at start).
 */
function raiseFdLimit(held) {
  const want = 3 * held + 4096;
  const now = fdLimit();
  if (now.soft >= want) return now;
  const r = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${want}:${Math.max(want, now.hard)}`], { encoding: 'utf8' });
  const after = fdLimit();
  if (after.soft < want) {
    console.log(
      `bench: could not raise the open-files limit to ${want} (now ${after.soft}: ${(r.stderr || r.error?.message || '').trim()}); --held ${held} may stop early`,
    );
  } else console.log(`bench: open-files limit raised from ${now.soft} to ${after.soft} for this bench and the servers it starts`);
  return after;
}

function rssKbOne(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

// Summed over the process tree: the same as before for one process, all workers with --workers.
const cpuTicks = sumOverTree(statCpuTicks);
const rssKb = sumOverTree(rssKbOne);

async function measure(pid, work) {
  let peak = rssKb(pid);
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssKb(pid));
  }, 50);
  const t0 = cpuTicks(pid);
  const n0 = treeCpuNs(pid);
  const result = await work();
  clearInterval(sampler);
  peak = Math.max(peak, rssKb(pid));
  return { result, ticks: cpuTicks(pid) - t0, ns: treeCpuNs(pid) - n0, peakRssKb: peak };
}

async function startOnionturn(group, dir, workers = 1, relay = RELAY) {
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const port = await freePort();
  // Its own drop counters (onionturn_dropped_total) for the --loaders rows' loss split.
  const metricsPort = await freePort();
  const args = [
    join(root, 'packages/cli/bin/onionturn.js'),
    'server',
    '--listen',
    `tcp://127.0.0.1:${port}`,
    '--listen',
    `udp://127.0.0.1:${port}`,
    '--realm',
    REALM,
    '--secret-file',
    secretFile,
    '--allow-loopback-peers',
    '--relay-ports',
    `${relay.min}-${relay.max}`,
    '--metrics',
    `127.0.0.1:${metricsPort}`,
    // coturn has no per-user allocation quota or bandwidth cap by default; uclient -W uses one
    // username for every client.
    '--max-allocations-per-user',
    '100000',
    // Nor a total (ours defaults to 10,000): the held allocations plus the load beside them.
    '--max-allocations',
    String(Math.max(10_000, HELD + 1000)),
    '--bandwidth',
    '0',
    '--total-bandwidth',
    '0',
    // Every client sends to the one turnutils_peer: per-destination budgets on (their cost is
    // measured) but too large to drop anything.
    '--destination-packet-rate',
    '1000000000',
    '--destination-bandwidth',
    '1000000000000',
    '--log-level',
    'warn',
    // Always said: the server's default is one worker per core, and the 'onionturn' row is one process.
    '--workers',
    String(workers),
  ];
  // BENCH_NODE_ARGS: extra Node flags for the onionturn server (e.g. --cpu-prof --cpu-prof-dir=DIR).
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const started = group.spawn('onionturn server', process.execPath, [...(PROFILE ? NODE_PERF_FLAGS : []), ...nodeArgs, ...args]);
  await waitFor(
    'onionturn server to listen',
    async () => {
      if (started.child.exitCode !== null) throw new Error(`onionturn exited: ${started.output()}`);
      const s = connect(port, '127.0.0.1');
      try {
        await Promise.race([once(s, 'connect'), sleep(300).then(() => Promise.reject(new Error('timeout')))]);
        return true;
      } catch {
        return false;
      } finally {
        s.destroy();
      }
    },
    // Generous: a Node start on a machine busy with other test runs can take seconds.
    30_000,
  );
  // Every worker listening: the primary has them all, and a moment for the last to take its share.
  if (workers > 1) {
    await waitFor('the workers to start', () => processTree(started.pid).length > workers, 30_000);
    await sleep(2000);
  }
  return {
    name: workers > 1 ? `onionturn-w${workers}` : 'onionturn',
    pid: started.pid,
    // Each worker has its own descriptor limit (the primary holds no allocation).
    processes: workers,
    own: { jsRoot: root },
    port,
    relay,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    command: `node ${args
      .slice(0, 1)
      .map((a) => a.replace(root + '/', ''))
      .join(' ')} ${args.slice(1).join(' ')}`,
  };
}

async function startBaseline(group, relay = RELAY) {
  const c = await startCoturn(group, { secrets: [SECRET], realm: REALM, relayPorts: relay, verbose: false });
  return {
    name: 'coturn',
    pid: c.process.pid,
    // One process (its relay threads share one descriptor table).
    processes: 1,
    own: { binary: 'turnserver' },
    port: c.port,
    relay,
    command: `turnserver --use-auth-secret --static-auth-secret=… --realm ${REALM} --no-tls --no-dtls --allow-loopback-peers --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 --min-port ${relay.min} --max-port ${relay.max}`,
  };
}

function parseRun(out) {
  const num = (re) => {
    const all = [...out.matchAll(re)];
    const last = all.at(-1);
    return last ? Number(last[1]) : NaN;
  };
  return {
    transmitSeconds: num(/Total transmit time is (\d+)/g),
    lossPct: num(/Total lost packets \d+ \(([\d.]+)%\)/g),
    rttMs: num(/Average round trip delay ([\d.]+) ms/g),
  };
}

// onionturn-wN: `onionturn server --workers N` (CPU and RSS summed over the primary and its workers).
// --workers 1,2 makes the onionturn rows onionturn and onionturn-w2, beside coturn (unless --servers
// leaves coturn out).
const SERVERS = serverList(ARGS.servers ?? process.env.BENCH_SERVERS ?? 'coturn,onionturn,onionturn-w2', ARGS.workers);

function serverName(workers) {
  return workers > 1 ? `onionturn-w${workers}` : 'onionturn';
}

function serverList(list, workers) {
  const named = list.split(',').filter(Boolean);
  for (const n of named) {
    if (n !== 'coturn' && !/^onionturn(-w[1-9]\d*)?$/.test(n)) {
      console.error(`bench: unknown server '${n}' (known: coturn, onionturn, onionturn-wN for --workers N)`);
      process.exit(2);
    }
  }
  if (workers === undefined) return named;
  return [...(named.includes('coturn') ? ['coturn'] : []), ...workers.map(serverName)];
}
// --loaders 1,2,4: the server-limited rows (bench-loaders.mjs) instead of the one-uclient rows.
const LOADERS = ARGS.loaders;
const JSON_FILE = ARGS.json;
const LOADER_PACED = Number(process.env.BENCH_LOADER_PACED_MESSAGES ?? 750);
const LOADER_FLOOD = Number(process.env.BENCH_LOADER_FLOOD_MESSAGES ?? FLOOD);
const SHAPES = process.env.BENCH_SHAPES?.split(',');
const CONFIGS = [];
for (const clients of [1, 10, 100]) for (const length of [100, 1000]) for (const z of [20, 0]) CONFIGS.push({ clients, length, z });
if (SHAPES) CONFIGS.splice(0, CONFIGS.length, ...CONFIGS.filter((c) => SHAPES.includes(`${c.clients}x${c.length}x${c.z}`)));

async function loadRuns(group, server, peer) {
  // Warm-up (not measured), the same for both: Node compiles its hot paths during the first
  // thousands of packets, and coturn gets to fill its buffers too.
  await runUclient(group, {
    server: { host: '127.0.0.1', port: server.port },
    secret: SECRET,
    peer: { host: peer.host, port: peer.port },
    tcp: true,
    clients: 10,
    messages: 500,
    length: 500,
    extraArgs: ['-c', '-z', '0'],
    timeoutMs: 60_000,
  });
  const rows = [];
  if (HELD_ONLY || LOADERS || ARGS.rates) return rows;
  for (const cfg of CONFIGS) {
    const messages = cfg.z === 0 ? FLOOD : PACED;
    const run = () =>
      runUclient(group, {
        server: { host: '127.0.0.1', port: server.port },
        secret: SECRET,
        peer: { host: peer.host, port: peer.port },
        tcp: true,
        clients: cfg.clients,
        messages,
        length: cfg.length,
        extraArgs: ['-c', '-z', String(cfg.z)],
        timeoutMs: 180_000,
      });
    const m = await measure(server.pid, () => profileDuring([{ name: server.name, pid: server.pid, own: server.own }], run));
    const r = m.result.result;
    const p = parseRun(r.output);
    const received = r.received ?? 0;
    rows.push({
      ...cfg,
      sent: r.sent ?? 0,
      received,
      rtPerSec: received / Math.max(1, p.transmitSeconds),
      lossPct: r.sent ? (100 * (r.sent - received)) / r.sent : NaN,
      rttMs: p.rttMs,
      cpuUsPerRt: received > 0 ? (m.ticks * TICK_US) / received : NaN,
      cpuNsUsPerRt: received > 0 ? m.ns / 1000 / received : NaN,
      ticks: m.ticks,
      peakRssMb: m.peakRssKb / 1024,
      failed: r.exitCode !== 0 || r.timedOut,
      split: m.result.splits[server.name],
    });
    process.stdout.write(`  ${server.name} ${cfg.clients}x${cfg.length}B z=${cfg.z}: ${received}/${r.sent ?? 0} back\n`);
  }
  return rows;
}

/**
 * --loaders: each shape with N uclients at once (N from the list), each against its own peer,
 * their round trips summed; the server's CPU over its process tree.
 */
/** What every runLoaders call says of the server under load and its echo peers. */
function loaderTarget(server, peers) {
  return { server: { port: server.port }, serverPid: server.pid, metricsUrl: server.metricsUrl, peers, secret: SECRET };
}

async function loaderRuns(group, server, peers) {
  const rows = [];
  for (const cfg of CONFIGS) {
    for (const n of LOADERS) {
      const r = await runLoaders(group, {
        ...loaderTarget(server, peers),
        loaders: n,
        clients: cfg.clients,
        messages: cfg.z === 0 ? LOADER_FLOOD : LOADER_PACED,
        length: cfg.length,
        z: cfg.z,
        timeoutMs: 240_000,
      });
      rows.push({ ...cfg, ...r, loadavg: loadavg() });
      process.stdout.write(
        `  ${server.name} ${cfg.clients}x${cfg.length}B z=${cfg.z} x${n} loaders: ${r.received}/${r.sent} back, ${f(r.rtPerSec, 0)} rt/s, load average ${loadavg()[0].toFixed(2)}\n`,
      );
      // A moment for the server to close the allocations uclient let go.
      await sleep(1000);
    }
  }
  return rows;
}

/** Opens `n` TURN-over-TCP connections, each with one authenticated allocation, and holds them. */
async function holdAllocations(port, n) {
  const sockets = [];
  /** Each allocation's refresh(), in the order they were made. */
  const refreshes = [];
  const one = (i) =>
    tcpAllocation({ port, realm: REALM, secret: SECRET, username: `${Math.floor(Date.now() / 1000) + 3600}:held${i}`, sockets }).catch((e) => {
      throw new Error(`allocation ${i} ${e.message}`);
    });
  // The first failure stops the making (what was made is still measured, and said).
  let next = 0;
  let made = 0;
  let error;
  const worker = async () => {
    while (next < n && error === undefined) {
      try {
        refreshes.push((await one(next++)).refresh);
        made++;
      } catch (e) {
        error ??= e instanceof Error ? e.message : String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
  return { sockets, refreshes, made, error };
}

/** One Refresh of each held allocation, 50 in flight: how many were refreshed, and the first error. */
async function refreshAll(refreshes) {
  let next = 0;
  let done = 0;
  let error;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < refreshes.length && error === undefined) {
        try {
          await refreshes[next++]();
          done++;
        } catch (e) {
          error ??= e instanceof Error ? e.message : String(e);
        }
      }
    }),
  );
  return { done, error };
}

/** Kernel memory of TCP and UDP sockets machine-wide (/proc/net/sockstat, pages), in kB. */
function socketKb() {
  const text = readFileSync('/proc/net/sockstat', 'utf8');
  let pages = 0;
  for (const m of text.matchAll(/^(?:TCP|UDP):.*\bmem (\d+)/gm)) pages += Number(m[1]);
  return pages * 4;
}

/** Kernel slab memory machine-wide (/proc/meminfo Slab), in kB: socket structures live there. */
function slabKb() {
  const m = /^Slab:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Open descriptors of the process tree. */
function fdCount(pid) {
  return processTree(pid).reduce((a, p) => {
    try {
      return a + readdirSync(`/proc/${p}/fd`).length;
    } catch {
      return a;
    }
  }, 0);
}

/**
 * How many allocations a server of `processes` processes can hold under the open-files limit it
 * inherits: two descriptors each (the client's TCP connection, the relay socket), and room for
 * the listeners and the load beside them. Making more would only measure EMFILE.
 */
function heldFor(processes, limit) {
  return Math.min(HELD, Math.floor((limit - 500) / 2) * processes);
}

async function allocationCost(server, group, peer, limit) {
  const want = heldFor(server.processes, limit);
  if (want < HELD) {
    console.log(
      `  ${server.name}: holds ${want}, not ${HELD}: ${server.processes} process(es) with an open-files limit of ${limit} (2 descriptors per TCP allocation)`,
    );
  }
  await sleep(500);
  const before = rssKb(server.pid);
  const kBefore = socketKb();
  const slabBefore = slabKb();
  const start = performance.now();
  const m = await measure(server.pid, () => holdAllocations(server.port, want));
  const makeMs = performance.now() - start;
  const { sockets, refreshes, made, error } = m.result;
  if (error !== undefined) console.log(`  ${server.name}: made ${made} of ${want} allocations, then: ${error}`);
  await sleep(1000);
  const after = rssKb(server.pid);
  const kAfter = socketKb();
  const slabAfter = slabKb();
  const fds = fdCount(server.pid);
  // The steady state: the server's CPU while they are only held (its timers, nothing on the
  // wire), then what one Refresh of each costs. The watch starts a few seconds after the making:
  // onionturn's first seconds after a burst still compile and collect (2-5x the later seconds).
  await sleep(4000);
  const idle = await measure(server.pid, () => sleep(HOLD_SECONDS * 1000));
  const refreshed = await measure(server.pid, () => refreshAll(refreshes));
  if (refreshed.result.error !== undefined) console.log(`  ${server.name}: refreshed ${refreshed.result.done} of ${made}, then: ${refreshed.result.error}`);
  // Relaying beside them: a paced load while every allocation is held.
  const beside = await measure(server.pid, () =>
    runUclient(group, {
      server: { host: '127.0.0.1', port: server.port },
      secret: SECRET,
      peer: { host: peer.host, port: peer.port },
      tcp: true,
      clients: BESIDE_CLIENTS,
      messages: PACED,
      length: 100,
      extraArgs: ['-c', '-z', '20'],
      timeoutMs: 180_000,
    }),
  );
  const b = beside.result;
  const p = parseRun(b.output);
  for (const s of sockets) s.destroy();
  await sleep(500);
  const per = Math.max(1, made);
  return {
    made,
    error,
    cpuUsPerAlloc: m.ns / 1000 / per,
    cpuTickUsPerAlloc: (m.ticks * TICK_US) / per,
    rssKbPerAlloc: (after - before) / per,
    rssBeforeMb: before / 1024,
    rssAfterMb: after / 1024,
    // Both ends of each client connection live on this machine: an upper bound for the server's.
    kernelKbPerAlloc: (kAfter - kBefore) / per,
    slabKbPerAlloc: (slabAfter - slabBefore) / per,
    fds,
    makeSeconds: makeMs / 1000,
    heldUsPerSecPerAlloc: idle.ns / 1000 / HOLD_SECONDS / per,
    refreshUs: refreshed.ns / 1000 / Math.max(1, refreshed.result.done),
    beside: {
      sent: b.sent ?? 0,
      received: b.received ?? 0,
      lossPct: b.sent ? (100 * (b.sent - (b.received ?? 0))) / b.sent : NaN,
      rttMs: p.rttMs,
      failed: b.exitCode !== 0 || b.timedOut,
    },
  };
}

const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const pad = (s, w) => String(s).padStart(w);

/** BENCH_PROFILE: the "(ns) us/rt" figure cut into kernel, runtime and own code by perf's samples. */
function printSplit(results) {
  console.log(
    "\nwhere the CPU per round trip goes (perf samples; kernel: syscalls and the network stack; runtime: Node/V8/libuv/libc, or coturn's libraries; own: onionturn packages, or the turnserver binary):",
  );
  const head = ['clients', 'bytes', 'z', 'server', 'kernel us', 'runtime us', 'own us', 'own %', 'samples'];
  const widths = [7, 5, 3, 9, 9, 10, 7, 6, 7];
  console.log(head.map((h, i) => pad(h, widths[i])).join(' '));
  for (let i = 0; i < CONFIGS.length; i++) {
    for (const name of ['coturn', 'onionturn']) {
      const r = results[name]?.[i];
      if (r?.split === undefined) continue;
      const s = r.split;
      const us = r.cpuNsUsPerRt;
      console.log(
        [r.clients, r.length, r.z, name, f(us * s.kernel, 1), f(us * s.runtime, 1), f(us * s.own, 1), f(100 * s.own, 1), s.samples]
          .map((x, j) => pad(x, widths[j]))
          .join(' '),
      );
    }
  }
}

function printRows(results) {
  console.log(
    `load: turnutils_uclient -t -c -W SECRET -e 127.0.0.1 -r PEER -m CLIENTS -l LEN -z Z -n ${PACED} (z=20) / ${FLOOD} (z=0), against turnutils_peer`,
  );
  console.log('CPU = server utime+stime over the run (USER_HZ ticks; "ns" column: the same from per-thread schedstat) / round trips received\n');
  const head = ['clients', 'bytes', 'z', 'server', 'rt/s', 'loss%', 'rtt ms', 'CPU us/rt', '(ns) us/rt', 'peak RSS MB', 'CPU ratio'];
  const widths = [7, 5, 3, 12, 8, 6, 7, 9, 10, 11, 9];
  console.log(head.map((h, i) => pad(h, widths[i])).join(' '));
  for (let i = 0; i < CONFIGS.length; i++) {
    const c = results.coturn?.[i];
    for (const name of SERVERS) {
      const r = results[name]?.[i];
      if (r === undefined) continue;
      const ratio = name !== 'coturn' && c !== undefined ? f(r.cpuNsUsPerRt / c.cpuNsUsPerRt, 2) : '';
      const cells = [
        r.clients,
        r.length,
        r.z,
        name,
        f(r.rtPerSec, 0),
        f(r.lossPct, 2),
        f(r.rttMs, 2),
        f(r.cpuUsPerRt, 1) + (r.ticks < 20 ? '~' : ''),
        f(r.cpuNsUsPerRt, 1),
        f(r.peakRssMb, 1),
        ratio + (r.failed ? ' FAIL' : ''),
      ];
      console.log(cells.map((x, j) => pad(x, widths[j])).join(' '));
    }
  }
  console.log('(~: under 20 CPU ticks measured, the tick column is coarse there)');
  if (PROFILE) printSplit(results);
}

/**
 * Where each row's lost round trips went: datagrams the kernel dropped at a full receive buffer,
 * by whose socket (udp-drops.mjs), beside uclient's count of messages not echoed by its end.
 */
function printDrops(rows) {
  console.log(
    "\nwhere datagrams were lost (kernel receive-buffer drops, /proc/net/udp per socket, sampled during the row): srv = the server's relay sockets, peer = the turnutils_peer echo sockets, cli = the uclients' (none over TCP); rcvbuf = the machine's Udp RcvbufErrors over the row (IPv4+6, all processes), unattr = rcvbuf not seen on a live socket (a relay socket that closed between samples, or other processes); app = the server's own drops by reason (onionturn /metrics); lost = sent - back (uclient: not echoed by its end)",
  );
  const head = ['clients', 'bytes', 'z', 'ld', 'server', 'lost', 'srv', 'peer', 'cli', 'unattr', 'rcvbuf', 'sndbuf', 'app', 'ended without summary'];
  const widths = [7, 5, 3, 2, 12, 7, 7, 7, 5, 6, 7, 6, 16, 30];
  console.log(head.map((h, i) => (i >= widths.length - 2 ? `  ${h}` : pad(h, widths[i]))).join(' '));
  for (const r of rows) {
    const app =
      r.appDrops === undefined
        ? '-'
        : Object.entries(r.appDrops)
            .map(([k, v]) => `${k}=${v}`)
            .join(',') || '0';
    const fail = (r.failures ?? []).map((x) => `#${x.loader} exit ${x.exitCode ?? x.signal}${x.timedOut ? ' (timeout)' : ''} at ${f(x.wallS, 0)} s`).join('; ');
    const cells = [
      r.clients,
      r.length,
      r.z,
      r.loaders,
      r.server,
      r.sent - r.received,
      r.dropsServer,
      r.dropsPeer,
      r.dropsClient,
      r.dropsUnattributed,
      r.rcvbufErrors,
      r.sndbufErrors,
    ];
    console.log(`${cells.map((x, j) => pad(x, widths[j])).join(' ')}   ${app.padEnd(16)} ${fail}`);
    for (const x of r.failures ?? []) console.log(`      uclient #${x.loader} last lines: ${x.tail.join(' | ')}`);
  }
}

/** The --loaders rows, each server's best per shape, and how far the machine's cores were used. */
function printLoaders(loaderResults) {
  const cores = cpus().length;
  console.log(
    `load: LOADERS x (turnutils_uclient -t -c -W SECRET -e 127.0.0.1 -r PEER_i -m CLIENTS -l LEN -z Z -n ${LOADER_PACED} (z>0) / ${LOADER_FLOOD} (z=0)), at once, each against its own turnutils_peer`,
  );
  console.log(
    `rt/s: round trips back per second, summed over the loaders, the best ${RATE_WINDOW_S} s (uclient's per-second progress, stamped on arrival); mean: first to last round trip back`,
  );
  console.log('offered: loaders x clients x 1000/z messages a second once every client has started (z=0: flood, as fast as uclient sends)');
  console.log('loss%: (sent - back) / sent; drop: sends the client TCP socket refused (EAGAIN: the server did not read fast enough), not counted as sent');
  console.log('us/rt: CPU per round trip back over the whole run: the server (its process tree), the load (uclients + peers)');
  console.log(
    `cores at best: CPU in use during the best window: server, load, and the whole machine (${cores} cores; the rest of "mach" is other processes: this bench, other test runs)`,
  );
  console.log(
    'vs coturn: rt/s and server us/rt against coturn at the same shape and loaders; "=" when both delivered within 5% of each other (CPU compared at equal rate)\n',
  );
  const head = [
    'clients',
    'bytes',
    'z',
    'ld',
    'server',
    'offered',
    'rt/s',
    'mean',
    'loss%',
    'drop',
    'rtt ms',
    'srv us/rt',
    'load us/rt',
    'srv',
    'load',
    'mach',
    'rt/s x',
    'us/rt x',
    'lavg',
  ];
  const widths = [7, 5, 3, 2, 12, 7, 7, 7, 6, 6, 7, 9, 10, 5, 5, 5, 6, 8, 5];
  const line = (cells) => console.log(cells.map((x, j) => pad(x, widths[j])).join(' '));
  line(head);
  const names = SERVERS.filter((n) => loaderResults[n] !== undefined);
  const rowsOf = (name, cfg) => loaderResults[name].filter((r) => r.clients === cfg.clients && r.length === cfg.length && r.z === cfg.z);
  for (const cfg of CONFIGS) {
    for (const n of LOADERS) {
      const c = loaderResults.coturn && rowsOf('coturn', cfg).find((r) => r.loaders === n);
      for (const name of names) {
        const r = rowsOf(name, cfg).find((x) => x.loaders === n);
        if (r === undefined) continue;
        const other = name !== 'coturn' && c !== undefined;
        const equal = other && Math.abs(r.rtPerSec - c.rtPerSec) <= 0.05 * Math.max(r.rtPerSec, c.rtPerSec);
        line([
          r.clients,
          r.length,
          r.z,
          r.loaders,
          name,
          r.z > 0 ? f((r.loaders * r.clients * 1000) / r.z, 0) : 'flood',
          f(r.rtPerSec, 0),
          f(r.meanRtPerSec, 0),
          f(r.lossPct, 2),
          r.sendDropped,
          f(r.rttMs, 2),
          f(r.serverUsPerRt, 1),
          f(r.loadUsPerRt, 1),
          f(r.coresAtBest.server, 2),
          f(r.coresAtBest.load, 2),
          f(r.coresAtBest.machine, 2),
          other ? f(r.rtPerSec / c.rtPerSec, 2) : '',
          (other ? `${equal ? '=' : ''}${f(r.serverUsPerRt / c.serverUsPerRt, 2)}` : '') + (r.failed ? ' FAIL' : ''),
          f(r.loadavg[0], 1),
        ]);
      }
    }
  }
  printDrops(names.flatMap((name) => loaderResults[name].map((r) => ({ ...r, server: name }))));
  console.log('\nthe limit each server reached: its best rt/s over the loader counts (same shapes, same run):');
  const h2 = ['clients', 'bytes', 'z', 'server', 'best rt/s', 'at ld', 'loss%', 'srv cores', 'mach cores', 'vs coturn', 'what ran out'];
  const w2 = [7, 5, 3, 12, 9, 5, 6, 9, 10, 9, 40];
  console.log(h2.map((x, j) => pad(x, w2[j])).join(' '));
  for (const cfg of CONFIGS) {
    const best = {};
    const reached = {};
    for (const name of names) {
      const rows = rowsOf(name, cfg);
      if (rows.length === 0) continue;
      const b = rows.reduce((a, r) => (r.rtPerSec > a.rtPerSec ? r : a));
      best[name] = b;
      const last = rows.at(-1);
      // Still rising with more loaders: the load (or the machine), not the server, was the limit.
      const rising = rows.length > 1 && b === last && b.rtPerSec > 1.1 * rows.at(-2).rtPerSec;
      const clean = (r) => r.lossPct === 0 && r.sendDropped === 0 && !r.failed;
      const others = b.coresAtBest.machine - b.coresAtBest.server - b.coresAtBest.load;
      reached[name] = !(b === last && (clean(last) || rising));
      const why = !reached[name]
        ? `not reached: ${clean(last) ? 'no loss' : 'still rising'} with the most loaders`
        : b.coresAtBest.machine >= 0.9 * cores
          ? `the machine's ${cores} cores (server ${f(b.coresAtBest.server, 2)}, load ${f(b.coresAtBest.load, 2)}, others ${f(others, 2)})`
          : 'the server (more loaders: no more delivered)';
      const c = best.coturn;
      console.log(
        [
          cfg.clients,
          cfg.length,
          cfg.z,
          name,
          f(b.rtPerSec, 0),
          b.loaders,
          f(b.lossPct, 2),
          f(b.coresAtBest.server, 2),
          f(b.coresAtBest.machine, 2),
          name !== 'coturn' && c !== undefined ? f(b.rtPerSec / c.rtPerSec, 2) : '',
          why,
        ]
          .map((x, j) => (j === w2.length - 1 ? `  ${x}` : pad(x, w2[j])))
          .join(' '),
      );
    }
    // Issue 17's goal, for the largest worker count: at least coturn's best, and no loss where coturn had none.
    const top = names.filter((n) => n !== 'coturn').at(-1);
    if (best.coturn !== undefined && top !== undefined && best[top] !== undefined) {
      const lossy = LOADERS.filter((n) => {
        const c = rowsOf('coturn', cfg).find((r) => r.loaders === n);
        const o = rowsOf(top, cfg).find((r) => r.loaders === n);
        return c !== undefined && o !== undefined && c.lossPct === 0 && o.lossPct > 0;
      });
      const ok = best[top].rtPerSec >= best.coturn.rtPerSec && lossy.length === 0;
      console.log(
        `  goal (${top} best >= coturn best, 0% loss where coturn has 0%): ${ok ? 'met' : 'not met'} (${f(best[top].rtPerSec / best.coturn.rtPerSec, 2)}x${lossy.length > 0 ? `; loss where coturn had none at ${lossy.join(',')} loader(s)` : ''}${reached.coturn || reached[top] ? '' : '; neither reached its limit: this compares the offered load'})`,
      );
    }
  }
}

/**
 * --rates R1,R2,...: each server's highest paced rate with 0% loss. All the servers run at once
 * (each on its own share of the relay port range, idle while not measured) and take turns at each
 * rate, in an order rotated per rate, so they share the machine's noise. The load: L uclients (the
 * largest --loaders, default 4), each BENCH_RATE_CLIENTS (100) clients x 100 B every z ms, z = L x
 * clients x 1000 / rate in whole ms (uclient's -z unit; the table says the rate offered), for
 * BENCH_RATE_SECONDS (15) of sending per client. Lossy: any message not echoed, a send the client
 * socket refused, or a uclient without its summary; a lossy run is run once more (one lossy run on
 * a shared machine can be noise) and a server that loses twice stops there. No new rate once
 * BENCH_RATE_BUDGET_S (1200) has passed.
 */
async function findMax() {
  const L = Math.max(...(LOADERS ?? [4]));
  const clients = Number(process.env.BENCH_RATE_CLIENTS ?? 100);
  const seconds = Number(process.env.BENCH_RATE_SECONDS ?? 15);
  const budgetS = Number(process.env.BENCH_RATE_BUDGET_S ?? 1200);
  const rates = [...ARGS.rates].sort((a, b) => a - b);
  const group = new ProcessGroup();
  const dirs = [];
  const servers = [];
  const rows = [];
  const started = performance.now();
  console.log(
    `bench: ${cpus().length} cores, load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  try {
    const peers = [];
    while (peers.length < L) peers.push(await startTurnutilsPeer(group));
    const span = Math.floor((RELAY.max - RELAY.min + 1) / SERVERS.length);
    for (const [i, which] of SERVERS.entries()) {
      const relay = { min: RELAY.min + i * span, max: RELAY.min + (i + 1) * span - 1 };
      const workers = Number(/^onionturn-w(\d+)$/.exec(which)?.[1] ?? 1);
      const dir = mkdtempSync(join(tmpdir(), 'onionturn-bench-'));
      dirs.push(dir);
      const server = which === 'coturn' ? await startBaseline(group, relay) : await startOnionturn(group, dir, workers, relay);
      servers.push(server);
      console.log(`bench: ${which} (pid ${server.pid}): ${server.command}`);
      await loadRuns(group, server, peers[0]); // the warm-up (no --loaders rows without --loaders)
    }
    const lossy = (r) => r.sent - r.received > 0 || r.sendDropped > 0 || r.failed;
    const active = new Set(servers.map((s) => s.name));
    for (const [k, rate] of rates.entries()) {
      if (active.size === 0) break;
      if ((performance.now() - started) / 1000 > budgetS) {
        console.log(`bench: time budget (${budgetS} s) spent: no rate above ${rates[k - 1]}`);
        break;
      }
      const z = Math.max(1, Math.round((L * clients * 1000) / rate));
      const offered = (L * clients * 1000) / z;
      const order = servers.filter((s) => active.has(s.name));
      for (let i = 0; i < k % Math.max(1, order.length); i++) order.push(order.shift());
      for (const server of order) {
        for (let attempt = 1; attempt <= 2; attempt++) {
          const r = await runLoaders(group, {
            ...loaderTarget(server, peers),
            loaders: L,
            clients,
            messages: Math.round((seconds * 1000) / z),
            length: 100,
            z,
            timeoutMs: 240_000,
          });
          const row = { server: server.name, rate, offered, attempt, clients, length: 100, z, ...r, loadavg: loadavg() };
          rows.push(row);
          process.stdout.write(
            `  ${server.name} offered ${f(offered, 0)} rt/s (z=${z}) try ${attempt}: ${r.received}/${r.sent} back, best ${f(r.rtPerSec, 0)} rt/s, lost ${r.sent - r.received} (server sockets ${r.dropsServer}, peers ${r.dropsPeer}, unattributed ${r.dropsUnattributed}), refused ${r.sendDropped}${r.failed ? ', a uclient failed' : ''}, ${f(r.serverUsPerRt, 1)} us/rt, load average ${loadavg()[0].toFixed(2)}\n`,
          );
          await sleep(1000);
          if (!lossy(r)) break;
          if (attempt === 2) active.delete(server.name);
        }
      }
    }
  } finally {
    await group.stopAll();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    for (const s of servers) removePerfMap(s.pid);
  }
  printRates(
    rows,
    servers.map((s) => s.name),
    L,
    clients,
    seconds,
  );
  if (JSON_FILE !== undefined) {
    writeFileSync(
      JSON_FILE,
      `${JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, loadavgAtEnd: loadavg(), loaders: L, clients, seconds, rows }, null, 2)}\n`,
    );
    console.log(`bench: rows written to ${JSON_FILE}`);
  }
}

/** BENCH_PERF_STAT=1: syscalls per round trip, per server process (a primary and its workers apart). */
function printSyscalls(rows) {
  if (!rows.some((r) => r.syscalls !== undefined)) return;
  console.log(
    '\nsyscalls per round trip back, per server process (perf stat; waits = epoll_wait/pwait/pwait2: event-loop turns; cs = context switches; cpu us = task-clock; rt/turn = all the server round trips / turns of this process: a worker sees about 1/N of them):',
  );
  const kinds = ['all', 'waits', 'recvmsg', 'recvmmsg', 'sendmsg', 'sendmmsg', 'read', 'write', 'writev', 'cs', 'cpu us'];
  const widths = [7, 12, 8, ...kinds.map(() => 8), 10];
  console.log(['offered', 'server', 'pid', ...kinds, 'rt/turn'].map((h, i) => pad(h, widths[i])).join(' '));
  for (const r of rows) {
    for (const [pid, c] of Object.entries(r.syscalls ?? {})) {
      const per = (n) => f((n ?? 0) / r.received, 3);
      const waits = (c.epoll_wait ?? 0) + (c.epoll_pwait ?? 0) + (c.epoll_pwait2 ?? 0);
      const cells = [
        f(r.offered, 0),
        r.server,
        pid,
        per(c.all),
        per(waits),
        per(c.recvmsg),
        per(c.recvmmsg),
        per(c.sendmsg),
        per(c.sendmmsg),
        per(c.read),
        per(c.write),
        per(c.writev),
        per(c['context-switches']),
        // task-clock: ms on CPU (perf -x prints msec)
        f(((c['task-clock'] ?? 0) * 1000) / r.received, 2),
      ];
      console.log([...cells, f(waits > 0 ? r.received / waits : NaN, 1)].map((x, i) => pad(x, widths[i])).join(' '));
    }
  }
}

function printRates(rows, names, L, clients, seconds) {
  console.log(
    `\nload: ${L} x (turnutils_uclient -t -c -W SECRET -e 127.0.0.1 -r PEER_i -m ${clients} -l 100 -z Z -n ${seconds}000/Z), at once, each against its own turnutils_peer; offered = ${L} x ${clients} x 1000/Z rt/s`,
  );
  console.log(
    'rt/s: the best 5 s of round trips back (summed); us/rt: server CPU (process tree) per round trip over the run; cores: server / load / machine in the best window',
  );
  const head = ['offered', 'z', 'server', 'try', 'rt/s', 'lost', 'refused', 'rtt ms', 'srv us/rt', 'srv', 'load', 'mach', 'lavg'];
  const widths = [7, 3, 12, 3, 7, 6, 7, 8, 9, 5, 5, 5, 5];
  console.log(head.map((h, i) => pad(h, widths[i])).join(' '));
  for (const r of rows) {
    console.log(
      [
        f(r.offered, 0),
        r.z,
        r.server,
        r.attempt,
        f(r.rtPerSec, 0),
        r.sent - r.received,
        r.sendDropped,
        f(r.rttMs, 1),
        f(r.serverUsPerRt, 1),
        f(r.coresAtBest.server, 2),
        f(r.coresAtBest.load, 2),
        f(r.coresAtBest.machine, 2),
        f(r.loadavg[0], 1),
      ]
        .map((x, j) => pad(x, widths[j]))
        .join(' ') + (r.failed ? ' FAIL' : ''),
    );
  }
  printDrops(rows);
  printSyscalls(rows);
  const lossless = (r) => r.sent === r.received && r.sendDropped === 0 && !r.failed;
  summarize(rows, names, '0% loss', lossless);
  // Lossless by queueing for seconds is not a rate kept: a call would have dropped those packets.
  summarize(rows, names, `0% loss and mean rtt <= ${RATE_MAX_RTT_MS} ms`, (r) => lossless(r) && r.rttMs <= RATE_MAX_RTT_MS);
}

/** BENCH_RATE_MAX_RTT_MS (250): the mean round trip above which a lossless row still does not count as kept. */
const RATE_MAX_RTT_MS = Number(process.env.BENCH_RATE_MAX_RTT_MS ?? 250);

/** Each server's highest rate passed under `ok` (every rate below it passed too), and CPU at the highest common one. */
function summarize(rows, names, what, ok) {
  const rates = [...new Set(rows.map((r) => r.offered))].sort((a, b) => a - b);
  // A server passes a rate when its last try there passed; it stops at the first rate it fails.
  const passed = (name) => {
    const out = [];
    for (const rate of rates) {
      const r = rows.filter((x) => x.server === name && x.offered === rate).at(-1);
      if (r === undefined || !ok(r)) break;
      out.push(r);
    }
    return out;
  };
  const top = Object.fromEntries(names.map((n) => [n, passed(n).at(-1)]));
  const tried = Math.max(...rows.map((r) => r.offered));
  console.log(`\nhighest offered rate with ${what} (same run, same loaders; "not reached" when it passed the highest rate tried):`);
  for (const n of names) {
    const t = top[n];
    const c = top.coturn;
    console.log(
      `  ${n.padEnd(12)} ${t ? f(t.offered, 0).padStart(7) : '   none'} rt/s${t && c && n !== 'coturn' ? `  (${f(t.offered / c.offered, 2)}x coturn's)` : ''}${t && t.offered === tried ? '  not reached' : ''}`,
    );
  }
  const common = Math.min(...names.map((n) => top[n]?.offered ?? 0));
  if (common > 0) {
    console.log(`  CPU per round trip at the highest common rate, ${f(common, 0)} rt/s offered:`);
    const at = Object.fromEntries(names.map((n) => [n, passed(n).find((r) => r.offered === common)]));
    for (const n of names) {
      const r = at[n];
      console.log(
        `    ${n.padEnd(12)} ${f(r.serverUsPerRt, 1).padStart(6)} us/rt, ${f(r.rtPerSec, 0)} rt/s best 5 s, rtt ${f(r.rttMs, 1)} ms${at.coturn && n !== 'coturn' ? `  (${f(r.serverUsPerRt / at.coturn.serverUsPerRt, 2)}x coturn's)` : ''}`,
      );
    }
  }
}

async function main() {
  requireTool(TOOLS.turnserver);
  requireTool(TOOLS.turnutilsUclient);
  if (PROFILE) requirePerf();
  // BENCH_RATES_REPORT=FILE: the --rates tables again from a --json file, no run.
  if (process.env.BENCH_RATES_REPORT) {
    const j = JSON.parse(readFileSync(process.env.BENCH_RATES_REPORT, 'utf8'));
    return printRates(j.rows, [...new Set(j.rows.map((r) => r.server))], j.loaders, j.clients, j.seconds);
  }
  if (ARGS.rates) return findMax();
  const limit = HELD > 0 ? raiseFdLimit(HELD) : fdLimit();
  const results = {};
  const commands = {};
  const allocCosts = {};
  const loaderResults = {};
  const loadavgAtStart = loadavg();
  console.log(`bench: ${cpus().length} cores, load average ${loadavgAtStart.map((x) => x.toFixed(2)).join(' ')}`);
  for (const which of SERVERS) {
    const group = new ProcessGroup();
    const dir = mkdtempSync(join(tmpdir(), 'onionturn-bench-'));
    let serverPid;
    try {
      const peer = await startTurnutilsPeer(group);
      // --loaders: one peer per loader, so one echo process is not what runs out.
      const peers = [peer];
      while (LOADERS && peers.length < Math.max(...LOADERS)) peers.push(await startTurnutilsPeer(group));
      const workers = Number(/^onionturn-w(\d+)$/.exec(which)?.[1] ?? 1);
      const server = which === 'coturn' ? await startBaseline(group) : await startOnionturn(group, dir, workers);
      serverPid = server.pid;
      commands[which] = server.command;
      console.log(`bench: ${which} (pid ${server.pid})`);
      results[which] = await loadRuns(group, server, peer);
      if (LOADERS) loaderResults[which] = await loaderRuns(group, server, peers);
      if (HELD > 0) allocCosts[which] = await allocationCost(server, group, peer, limit.soft);
    } finally {
      await group.stopAll();
      rmSync(dir, { recursive: true, force: true });
      if (serverPid !== undefined) removePerfMap(serverPid);
    }
  }
  console.log('\nservers:');
  for (const [k, v] of Object.entries(commands)) console.log(`  ${k}: ${v}`);
  console.log('each server first gets one unmeasured warm-up run (10 clients x 500 x 500 B, flood)');
  if (LOADERS) printLoaders(loaderResults);
  else printRows(results);
  if (JSON_FILE !== undefined) {
    writeFileSync(
      JSON_FILE,
      `${JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, loadavgAtStart, loadavgAtEnd: loadavg(), servers: commands, rows: LOADERS ? loaderResults : results, allocations: allocCosts }, null, 2)}\n`,
    );
    console.log(`bench: rows written to ${JSON_FILE}`);
  }
  if (Object.keys(allocCosts).length === 0) return;
  console.log(
    `\nallocation cost (${HELD} TCP allocations with REST credentials, 50 in flight, then held; open-files limit ${limit.soft}; beside them ${BESIDE_CLIENTS} uclient clients x ${PACED} x 100 B every 20 ms):`,
  );
  const w = [12, 6, 7, 12, 16, 12, 10, 12, 13, 11, 12, 15, 13, 7, 8, 7];
  console.log(
    [
      'server',
      'held',
      'make s',
      'CPU us/alloc',
      '(ticks) us/alloc',
      'idle us/s/al',
      'refresh us',
      'steady us/s/al',
      'RSS before MB',
      'RSS held MB',
      'RSS kB/alloc',
      'sockstat kB/al',
      'slab kB/alloc',
      'fds',
      'beside%',
      'rtt ms',
    ]
      .map((h, i) => pad(h, w[i]))
      .join(' '),
  );
  for (const [name, a] of Object.entries(allocCosts)) {
    console.log(
      [
        name,
        a.made,
        f(a.makeSeconds, 1),
        f(a.cpuUsPerAlloc, 0),
        f(a.cpuTickUsPerAlloc, 0),
        f(a.heldUsPerSecPerAlloc, 3),
        f(a.refreshUs, 0),
        f(a.heldUsPerSecPerAlloc + a.refreshUs / REFRESH_INTERVAL_S, 3),
        f(a.rssBeforeMb, 1),
        f(a.rssAfterMb, 1),
        f(a.rssKbPerAlloc, 1),
        f(a.kernelKbPerAlloc, 2),
        f(a.slabKbPerAlloc, 1),
        a.fds,
        f(a.beside.lossPct, 2) + (a.beside.failed ? ' FAIL' : ''),
        f(a.beside.rttMs, 2),
      ]
        .map((x, i) => pad(x, w[i]))
        .join(' '),
    );
  }
  console.log(
    `(idle: CPU per second per held allocation over ${HOLD_SECONDS} s of holding only; refresh: CPU per Refresh, each refreshed once; steady: idle + refresh / ${REFRESH_INTERVAL_S} s, the server's CPU per second per allocation held and refreshed as libwebrtc does)`,
  );
  console.log(
    '(sockstat: TCP+UDP buffer memory of the whole machine, both ends; slab: kernel slab of the whole machine (socket, inode, epoll structures), both ends and anything else running: an upper bound; beside%: loss of the paced load while all are held; fds: descriptors of the server (and its workers) while held)',
  );
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  },
);
