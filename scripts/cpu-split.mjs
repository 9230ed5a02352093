// BENCH_PROFILE=1 for `npm run bench` and `npm run bench:client`: where a process's CPU goes,
// sampled by Linux perf (cpu-clock, 999 Hz, no call graphs) while a measured run goes on. Each
// sample is put in one of three parts:
//   kernel  - system calls and the network stack under them (for loopback, the receiver's half
//             too): work any relay pays for the same sends and receives;
//   own     - the program's own code: onionturn's packages (JIT code named file://ROOT/packages/;
//             Node runs with --perf-basic-prof and --interpreted-frames-native-stack so JS has
//             names), or the C program's own binary;
//   runtime - everything else in user space: Node, V8 (builtins, GC, compiler threads), libuv,
//             libc, and Node's own JS (streams, dgram); for a C program its libraries.
// A benchmark aid, not a test: perf adds a little overhead to the process it samples.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { basename } from 'node:path';

export const PROFILE = process.env.BENCH_PROFILE === '1';

/** Node flags that let perf name JS functions (for processes started while PROFILE is on). */
export const NODE_PERF_FLAGS = ['--perf-basic-prof', '--interpreted-frames-native-stack'];

export function requirePerf() {
  const r = spawnSync('perf', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error('BENCH_PROFILE=1 needs Linux perf: apt-get install -y linux-perf (or run without BENCH_PROFILE)');
  }
}

/**
 * Samples each process while `work()` runs. `own` says which samples are the process's own code:
 * `{ jsRoot }` for a Node program (its JS under jsRoot/packages/), `{ binary }` for a C program.
 */
export async function profileDuring(targets, work) {
  const runs = targets.map((t) => {
    const file = `/tmp/onionturn-bench-${t.pid}-${Date.now()}.perf`;
    const child = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '999', '-p', String(t.pid), '-o', file], { stdio: 'ignore' });
    return { t, file, child };
  });
  // perf needs a moment to attach before the run starts.
  await new Promise((r) => setTimeout(r, 300));
  let result;
  try {
    result = await work();
  } finally {
    await Promise.all(
      runs.map(async (r) => {
        if (r.child.exitCode !== null) return;
        const closed = once(r.child, 'close');
        r.child.kill('SIGINT');
        await closed;
      }),
    );
  }
  const splits = {};
  for (const r of runs) {
    splits[r.t.name] = split(r.file, r.t.own);
    rmSync(r.file, { force: true });
  }
  return { result, splits };
}

/** Fractions of samples in kernel / runtime / own code. */
function split(file, own) {
  const r = spawnSync('perf', ['report', '-i', file, '--stdio', '--no-children', '-g', 'none', '--sort', 'dso,sym', '-n', '-t', '|', '--percent-limit', '0'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const counts = { kernel: 0, runtime: 0, own: 0 };
  let total = 0;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('#') || !line.includes('|')) continue;
    const [, samples, dso, sym] = line.split('|').map((s) => s.trim());
    const n = Number(samples);
    if (!Number.isFinite(n)) continue;
    total += n;
    if (dso.startsWith('[kernel')) counts.kernel += n;
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
