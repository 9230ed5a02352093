// Time on CPU of one process, read from /proc (Linux), for the benchmarks that compare servers'
// CPU per packet: every thread's (JIT and GC threads too), from each thread's schedstat, which
// counts in ns where /proc/PID/stat's utime+stime count in USER_HZ ticks.
import { readFileSync, readdirSync } from 'node:fs';

/** Time on CPU of all of `pid`'s threads, ns (0 once it is gone). */
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
