// BENCH_PROFILE=1 for `npm run bench` and `npm run bench:client`: where a process's CPU goes,
// sampled by Linux perf (cpu-clock, 999 Hz, no call graphs) while a measured run goes on. Each
// sample is put in one of three parts:
//   kernel  - system calls and the network stack under them (for loopback, the receiver's half
//             too): work any relay pays for the same sends and receives;
//   own     - the program's own code: onionturn's packages (compiled JS, which Node names for
//             perf under --perf-basic-prof as file://ROOT/packages/...), or the C program's binary;
//   runtime - everything else in user space: Node, V8 (builtins, GC, compiler threads), libuv,
//             libc, and Node's own JS (streams, dgram); for a C program its libraries. Our JS
//             while still interpreted (the first runs after start) counts here too: its samples
//             land in V8's shared bytecode handlers.
// A benchmark aid, not a test: perf adds some overhead to the process it samples, so figures
// from a profiled run are not to be compared with those of a plain one.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

export const PROFILE = process.env.BENCH_PROFILE === '1';

/** Node flags that let perf name JS functions (for processes started while PROFILE is on). */
export const NODE_PERF_FLAGS = ['--perf-basic-prof'];

export function requirePerf() {
  const r = spawnSync('perf', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error('BENCH_PROFILE=1 needs Linux perf: apt-get install -y linux-perf (or run without BENCH_PROFILE)');
  }
  // Without root, perf_event_paranoid >= 2 limits perf to user space: the kernel share would
  // silently read as zero.
  let paranoid = 2;
  try {
    paranoid = Number(readFileSync('/proc/sys/kernel/perf_event_paranoid', 'utf8'));
  } catch {
    // no such file: keep the cautious value
  }
  if (process.getuid?.() !== 0 && paranoid > 1) {
    throw new Error(`BENCH_PROFILE=1 needs root or kernel.perf_event_paranoid <= 1 (it is ${paranoid}): perf would see no kernel samples`);
  }
}

/**
 * Samples each process while `work()` runs (only with BENCH_PROFILE=1; otherwise just runs it,
 * with no splits). `own` says which samples are the process's own code: `{ jsRoot }` for a Node
 * program (its JS under jsRoot/packages/), `{ binary }` for a C program.
 */
export async function profileDuring(targets, work) {
  if (!PROFILE) return { result: await work(), splits: {} };
  const dir = mkdtempSync(join(tmpdir(), 'onionturn-perf-'));
  try {
    const runs = targets.map((t) => {
      const file = join(dir, `${t.pid}.perf`);
      const child = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '999', '-p', String(t.pid), '-o', file], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c) => (stderr += c.toString()));
      const closed = once(child, 'close');
      return { t, file, child, closed, stderr: () => stderr };
    });
    // perf needs a moment to attach before the run starts.
    await new Promise((r) => setTimeout(r, 300));
    let result;
    try {
      result = await work();
    } finally {
      for (const r of runs) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGINT');
      await Promise.all(runs.map((r) => r.closed));
    }
    const splits = {};
    for (const r of runs) {
      const s = split(r.file, r.t.own);
      if (!(s.samples > 0)) throw new Error(`perf recorded no samples of ${r.t.name} (pid ${r.t.pid}): ${r.stderr().trim() || 'no message'}`);
      splits[r.t.name] = s;
    }
    return { result, splits };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Fractions of samples in kernel / runtime / own code. */
function split(file, own) {
  const r = spawnSync('perf', ['report', '-i', file, '--stdio', '--no-children', '-g', 'none', '--sort', 'dso,sym', '-n', '-t', '|', '--percent-limit', '0'], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const counts = { kernel: 0, runtime: 0, own: 0 };
  let total = 0;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('#') || !line.includes('|')) continue;
    const [, samples, dso, sym] = line.split('|').map((s) => s.trim());
    const n = Number(samples);
    if (!Number.isFinite(n)) continue;
    total += n;
    // perf marks kernel symbols [k]: the kernel image, its modules (nf_conntrack on Docker hosts)
    // and kernel addresses it could not name.
    if (sym.startsWith('[k]')) counts.kernel += n;
    else if (own.jsRoot !== undefined ? sym.includes(`${own.jsRoot}/packages/`) : basename(dso) === own.binary) counts.own += n;
    else counts.runtime += n;
  }
  const f = (n) => (total > 0 ? n / total : NaN);
  return { samples: total, kernel: f(counts.kernel), runtime: f(counts.runtime), own: f(counts.own) };
}

/** Node writes /tmp/perf-PID.map under --perf-basic-prof; remove it once the process is gone. */
export function removePerfMap(pid) {
  rmSync(`/tmp/perf-${pid}.map`, { force: true });
}
