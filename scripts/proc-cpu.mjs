// A process's time on CPU and its descendants, read from /proc (Linux), for the benchmarks that
// compare servers' CPU per packet (bench:server, its loaders, bench:client, the allocation split).
import { readFileSync, readdirSync } from 'node:fs';

/** One USER_HZ tick (/proc's utime, stime, cutime...) in µs: USER_HZ is 100 on Linux. */
export const TICK_US = 1e6 / 100;

/**
 * /proc/PID/stat's fields after the command name (which may contain spaces and parentheses): the
 * 3rd field overall is [0]; undefined once the process is gone. `pid` may be 'self'.
 */
export function statFields(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of `pid` in USER_HZ ticks (0 once it is gone). */
export function statCpuTicks(pid) {
  const f = statFields(pid);
  return f === undefined ? 0 : Number(f[11]) + Number(f[12]); // the 14th and 15th fields
}

/**
 * Time on CPU of all of `pid`'s threads (JIT and GC threads too), ns, from each thread's
 * schedstat: the same quantity as statCpuTicks at finer resolution (0 once it is gone).
 */
export function threadCpuNs(pid) {
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  let ns = 0;
  for (const tid of tids) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that just ended
    }
  }
  return ns;
}

/** `pid` and its descendants, parents first (a --workers server is a primary and its workers). */
export function processTree(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const tid of readdirSync(`/proc/${out[i]}/task`)) {
        const kids = readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      }
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** `f(pid)` summed over `pid` and its descendants (a server with its workers). */
export const sumOverTree = (f) => (pid) => processTree(pid).reduce((a, p) => a + f(p), 0);

/** threadCpuNs summed over `pid` and its descendants. */
export const treeCpuNs = sumOverTree(threadCpuNs);
