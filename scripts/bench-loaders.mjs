// `npm run bench -- --loaders 1,2,4`: N turnutils_uclient processes at once against one server,
// each with its own turnutils_peer (so the one echo peer is not what runs out), their delivered
// round trips summed. One uclient is one single-threaded process that starts its clients at random
// 1-6 s offsets and, over TCP, counts a send the socket refused as "send dropped", not as lost:
// its own "Total transmit time" (whole seconds, with the start spread and, after any loss, a 10 s
// wait) cannot say what rate a server sustained. So each uclient's per-second progress line
// (tot_recv_msgs) is stamped here on arrival, and the delivered rate is read off the summed curve:
// the best 5 s, and the mean from the first round trip back to the last.
// CPU is sampled on the same clock: the server's process tree, the load (uclients and peers), and
// the whole machine (/proc/stat), so a row says whether the server or the machine's cores ran out.
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { TOOLS, requireTool } from '@onionturn/testkit';
import { TICK_US, processTree, statFields, threadCpuNs, treeCpuNs } from './proc-cpu.mjs';
import { dropTracker, dropsDelta, perfStat, serverDrops } from './udp-drops.mjs';

/** The window the delivered rate is read over: long against uclient's one line a second. */
export const RATE_WINDOW_S = 5;
const SAMPLE_MS = 250;

/** Busy and total CPU time of the whole machine (USER_HZ ticks), from /proc/stat's first line. */
export function machineTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = f[3] + f[4];
  return { busy: total - idle, total };
}

/** CPU (ns) of this process's children that ended and were reaped: the uclients once they exit. */
function reapedChildrenNs() {
  const f = statFields('self');
  return (Number(f[13]) + Number(f[14])) * TICK_US * 1000; // cutime + cstime: the 16th and 17th fields
}

/** One uclient's per-second progress: `N: : start_mclient: msz=.., tot_send_msgs=S, tot_recv_msgs=R`. */
const PROGRESS = /start_mclient: (?:msz=\d+, )?tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/;

/**
 * Linear interpolation of a cumulative series [{t, v}] at time t: 0 before the first point, the
 * last value after the last one.
 */
export function valueAt(series, t) {
  if (series.length === 0 || t <= series[0].t) return series.length === 0 || t < series[0].t ? 0 : series[0].v;
  for (let i = 1; i < series.length; i++) {
    const a = series[i - 1];
    const b = series[i];
    if (t <= b.t) return b.t === a.t ? b.v : a.v + ((b.v - a.v) * (t - a.t)) / (b.t - a.t);
  }
  return series.at(-1).v;
}

/**
 * The delivered rate of several loaders' cumulative received counts ([{t ms, v}] each): the best
 * mean over `windowS` seconds of their sum (stepped every 100 ms), and the mean from the first
 * round trip back to the moment the sum reached its final value.
 */
export function deliveredRate(seriesList, windowS = RATE_WINDOW_S) {
  const all = seriesList.flat();
  if (all.length === 0) return { best: NaN, bestAt: NaN, mean: NaN, spanS: NaN, window: windowS };
  const sum = (t) => seriesList.reduce((a, s) => a + valueAt(s, t), 0);
  const final = seriesList.reduce((a, s) => a + (s.at(-1)?.v ?? 0), 0);
  const times = all.map((p) => p.t);
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  // First moment anything came back, and the first moment everything had.
  let start = NaN;
  let end = NaN;
  for (let step = t0; ; step += 100) {
    const t = Math.min(step, t1);
    const v = sum(t);
    if (Number.isNaN(start) && v > 0) start = t;
    if (v >= final || t === t1) {
      end = t;
      break;
    }
  }
  if (Number.isNaN(start)) return { best: 0, bestAt: NaN, bestEnd: NaN, mean: 0, spanS: 0, window: windowS };
  const spanS = (end - start) / 1000;
  const w = Math.min(windowS * 1000, Math.max(1000, end - start));
  let best = 0;
  let bestAt = start;
  for (let t = t0; t + w <= Math.max(t1, t0 + w) + 100; t += 100) {
    const r = (sum(t + w) - sum(t)) / (w / 1000);
    if (r > best) {
      best = r;
      bestAt = t;
    }
  }
  return { best, bestAt, bestEnd: bestAt + w, mean: spanS > 0 ? final / spanS : NaN, spanS, window: w / 1000 };
}

/** A turnutils_peer's pid (testkit's startTurnutilsPeer gives its process, not a pid). */
const peerPid = (p) => p.pid ?? p.process.pid;

/** A uclient run's closing summary, per loader. */
function summary(text) {
  const last = (re) => {
    const all = [...text.matchAll(re)];
    return all.length > 0 ? Number(all.at(-1)[1]) : NaN;
  };
  const totals = [...text.matchAll(/start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/gm)].at(-1);
  return {
    sent: totals ? Number(totals[1]) : NaN,
    received: totals ? Number(totals[2]) : NaN,
    sendDropped: last(/total send dropped (\d+)/g),
    rttMs: last(/Average round trip delay ([\d.]+) ms/g),
  };
}

/**
 * Runs `loaders` uclients at once, loader i against peers[i], each `-m clients -n messages -l
 * length -z z` over TCP with no RTCP allocation, and samples CPU while they run.
 * serverPid: the server's primary (its process tree's CPU is summed).
 */
export async function runLoaders(group, { server, serverPid, metricsUrl, peers, loaders, secret, clients, messages, length, z, timeoutMs }) {
  const uclient = requireTool(TOOLS.turnutilsUclient);
  const runs = [];
  // Where datagrams were lost (udp-drops.mjs): the server's sockets (its whole process tree), the
  // echo peers', the uclients'; and the server's own drop counters when it has /metrics.
  const drops = dropTracker(
    {
      server: () => processTree(serverPid),
      peer: () => peers.slice(0, loaders).map(peerPid),
      client: () => runs.filter((r) => r.exitCode === null).map((r) => r.pid),
    },
    // A peer socket gone before its owner was looked up: by its port (bound by the peer).
    (port) => (peers.slice(0, loaders).some((p) => p.port === port) ? 'peer' : undefined),
  );
  const app0 = await serverDrops(metricsUrl);
  // BENCH_PERF_STAT=1: syscalls per process of the server (perf stat; root or perf_event_paranoid <= 1).
  const stopPerf = process.env.BENCH_PERF_STAT === '1' ? perfStat(spawn, processTree(serverPid)) : undefined;
  const children0 = reapedChildrenNs();
  /** The echo peers' CPU so far (ns). */
  const peersCpuNs = () => peers.slice(0, loaders).reduce((a, p) => a + threadCpuNs(peerPid(p)), 0);
  const peers0 = peersCpuNs();
  const server0 = treeCpuNs(serverPid);
  const m0 = machineTicks();
  const self0 = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < loaders; i++) {
    const peer = peers[i];
    const args = ['-t', '-c', '-W', secret, '-e', peer.host, '-r', String(peer.port), '-n', String(messages), '-m', String(clients), '-l', String(length)];
    args.push('-z', String(z), '-p', String(server.port), '127.0.0.1');
    const s = group.spawn(`turnutils_uclient ${i + 1}`, uclient, args);
    const run = {
      pid: s.pid,
      series: [{ t: performance.now() - started, v: 0 }],
      text: '',
      tail: [],
      lastNs: 0,
      timedOut: false,
      exitCode: null,
      signal: null,
    };
    let partial = '';
    const onData = (chunk) => {
      const now = performance.now() - started;
      const text = partial + chunk.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const m = PROGRESS.exec(line);
        if (m) run.series.push({ t: now, v: Number(m[2]) });
        // Keep what the summary needs, not the per-allocation chatter of 100 clients.
        if (/start_mclient: tot_|Total |Average round trip|Cannot|ERROR|error/i.test(line)) run.text += `${line}\n`;
        // The last lines, whatever they are: said when a uclient ends without its summary.
        run.tail.push(line);
        if (run.tail.length > 8) run.tail.shift();
      }
    };
    s.child.stdout?.on('data', onData);
    s.child.stderr?.on('data', onData);
    const closed = once(s.child, 'close');
    const timer = setTimeout(() => {
      run.timedOut = true;
      s.child.kill('SIGKILL');
    }, timeoutMs);
    run.done = closed.then(([code, signal]) => {
      clearTimeout(timer);
      run.exitCode = code;
      run.signal = signal;
      run.wallS = (performance.now() - started) / 1000;
    });
    runs.push(run);
  }
  // CPU on the same clock as the progress lines.
  const samples = [];
  const sample = () => {
    const t = performance.now() - started;
    for (const r of runs) if (r.exitCode === null) r.lastNs = Math.max(r.lastNs, threadCpuNs(r.pid));
    const loadNs = runs.reduce((a, r) => a + r.lastNs, 0) + peersCpuNs() - peers0;
    samples.push({ t, serverNs: treeCpuNs(serverPid) - server0, loadNs, machine: machineTicks() });
    drops.sample();
  };
  sample();
  const sampler = setInterval(sample, SAMPLE_MS);
  await Promise.all(runs.map((r) => r.done));
  clearInterval(sampler);
  sample();
  const wallS = (performance.now() - started) / 1000;
  const uclientNs = reapedChildrenNs() - children0;
  const peersNs = peersCpuNs() - peers0;
  const serverNs = treeCpuNs(serverPid) - server0;
  const m1 = machineTicks();
  const self = process.cpuUsage(self0);
  // The server closes the allocations uclient let go a moment after: their relay sockets' last counts.
  const dropSplit = drops.finish();
  const syscalls = stopPerf ? await stopPerf() : undefined;
  const appDrops = dropsDelta(app0, await serverDrops(metricsUrl));
  const per = runs.map((r) => ({ ...summary(r.text), exitCode: r.exitCode, signal: r.signal, timedOut: r.timedOut, wallS: r.wallS }));
  const failures = per
    .map((p, i) => ({ ...p, loader: i + 1, tail: runs[i].tail }))
    .filter((p) => p.exitCode !== 0 || p.timedOut || !Number.isFinite(p.received));
  // The final totals are the last point of each curve (uclient prints them as it ends).
  const series = runs.map((r, i) => (Number.isFinite(per[i].received) ? [...r.series, { t: r.series.at(-1).t, v: per[i].received }] : r.series));
  const rate = deliveredRate(series);
  // CPU during the best window, in cores: interpolated from the samples.
  const at = (key, t) =>
    valueAt(
      samples.map((s) => ({ t: s.t, v: key === 'machine' ? s.machine.busy : s[key] })),
      t,
    );
  const windowS = rate.window;
  const inWindow = (key, scale) => (at(key, rate.bestEnd) - at(key, rate.bestAt)) / scale / windowS;
  const sent = per.reduce((a, p) => a + (p.sent || 0), 0);
  const received = per.reduce((a, p) => a + (p.received || 0), 0);
  const sendDropped = per.reduce((a, p) => a + (p.sendDropped || 0), 0);
  const machineCores = (m1.busy - m0.busy) / 100 / wallS;
  const selfNs = (self.user + self.system) * 1000;
  return {
    loaders,
    sent,
    received,
    sendDropped,
    lossPct: sent > 0 ? (100 * (sent - received)) / sent : NaN,
    rttMs: per.reduce((a, p) => a + (p.rttMs || 0) * (p.received || 0), 0) / Math.max(1, received),
    failed: failures.length > 0,
    // A uclient that ended without its summary: how it ended and its last lines.
    failures: failures.map(({ loader, exitCode, signal, timedOut, wallS, tail }) => ({ loader, exitCode, signal, timedOut, wallS, tail })),
    ...dropSplit,
    appDrops,
    syscalls,
    rtPerSec: rate.best,
    meanRtPerSec: rate.mean,
    spanS: rate.spanS,
    rateWindowS: windowS,
    wallS,
    serverNs,
    loadNs: uclientNs + peersNs,
    uclientNs,
    peersNs,
    serverUsPerRt: received > 0 ? serverNs / 1000 / received : NaN,
    loadUsPerRt: received > 0 ? (uclientNs + peersNs) / 1000 / received : NaN,
    // Mean over the whole run (spawn to the last uclient's exit), in cores.
    cores: {
      server: serverNs / 1e9 / wallS,
      load: (uclientNs + peersNs) / 1e9 / wallS,
      machine: machineCores,
      // Everything else that ran on the machine meanwhile: other helpers' tests, this bench itself.
      other: Math.max(0, machineCores - (serverNs + uclientNs + peersNs + selfNs) / 1e9 / wallS),
    },
    // The same during the best window (the uclients' CPU there read from /proc while they ran).
    coresAtBest: {
      server: inWindow('serverNs', 1e9),
      load: inWindow('loadNs', 1e9),
      machine: inWindow('machine', 100),
    },
  };
}
