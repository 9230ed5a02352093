// Where a bench row's datagrams were lost: the kernel's per-socket receive drops (the `drops`
// column of /proc/net/udp and /proc/net/udp6, sk_drops: mostly a full receive buffer), split by
// whose socket it was — the server's relay sockets, the turnutils_peer echo sockets, the load
// client's sockets — and the machine's totals from /proc/net/snmp (Udp/Udp6 RcvbufErrors,
// InErrors, SndbufErrors) to check the split against.
// A relay socket lives only as long as its allocation, so the table is sampled while the row runs
// and each socket's last seen count kept: what a socket dropped after the last sample before it
// closed shows only in the machine's totals ("unattributed", which also holds other processes'
// drops: this machine runs other tests meanwhile).
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** inode -> { port, drops } for every UDP socket in this network namespace. */
export function udpSockets() {
  const out = new Map();
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let text;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const lines = text.split('\n');
    for (let i = 1; i < lines.length; i++) {
      const f = lines[i].trim().split(/\s+/);
      if (f.length < 13) continue;
      // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
      const port = parseInt(f[1].split(':')[1], 16);
      out.set(f[9], { port, drops: Number(f[12]) });
    }
  }
  return out;
}

/** The machine's UDP error counters (IPv4 + IPv6) from /proc/net/snmp and /proc/net/snmp6. */
export function udpCounters() {
  const c = { RcvbufErrors: 0, InErrors: 0, SndbufErrors: 0, InDatagrams: 0 };
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('Udp:'));
    const names = lines[0].split(/\s+/).slice(1);
    const values = lines[1].split(/\s+/).slice(1).map(Number);
    names.forEach((n, i) => {
      if (n in c) c[n] += values[i];
    });
  } catch {
    // no snmp: the totals stay 0
  }
  try {
    for (const line of readFileSync('/proc/net/snmp6', 'utf8').split('\n')) {
      const m = /^Udp6(\w+)\s+(\d+)/.exec(line);
      if (m && m[1] in c) c[m[1]] += Number(m[2]);
    }
  } catch {
    // no IPv6
  }
  return c;
}

/** Socket inodes held by a process (all its descriptors). */
function socketInodes(pid) {
  const out = new Set();
  let fds = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/**
 * Tracks drops over one row. owners: { server: () => pids, peer: () => pids, client: () => pids }
 * (functions: a server's workers and the uclients come and go); byPort(port): the owner of a
 * socket that closed before its descriptors were looked at. Call sample() while the row runs
 * and finish() at its end.
 */
export function dropTracker(owners, byPort = () => undefined) {
  const counters0 = udpCounters();
  const first = udpSockets();
  // Per socket: the count when first seen (0 for a socket made during the row) and the last count.
  const seen = new Map();
  for (const [inode, s] of first) seen.set(inode, { base: s.drops, last: s.drops, port: s.port, owner: undefined });
  const classify = (fresh) => {
    // The descriptor scan is not free: only when sockets appeared (a row's allocations, mostly
    // at its start), and for sockets that dropped something and have no owner yet. Owners are
    // looked up while the socket lives: a port says nothing (other processes' ephemeral ports
    // fall in relay ranges too).
    const want = [...seen.entries()].filter(([, s]) => s.owner === undefined && (fresh || s.last > s.base));
    if (want.length === 0) return;
    for (const [name, pids] of Object.entries(owners)) {
      const inodes = new Set();
      for (const pid of pids()) for (const i of socketInodes(pid)) inodes.add(i);
      for (const [inode, s] of want) if (s.owner === undefined && inodes.has(inode)) s.owner = name;
    }
  };
  const sample = () => {
    let fresh = false;
    for (const [inode, s] of udpSockets()) {
      const k = seen.get(inode);
      if (k === undefined) {
        seen.set(inode, { base: 0, last: s.drops, port: s.port, owner: undefined });
        fresh = true;
      } else k.last = s.drops;
    }
    classify(fresh);
  };
  const finish = () => {
    sample();
    const counters1 = udpCounters();
    const by = { server: 0, peer: 0, client: 0, other: 0 };
    const ports = {};
    for (const s of seen.values()) {
      const d = s.last - s.base;
      if (d <= 0) continue;
      const owner = s.owner ?? byPort(s.port) ?? 'other';
      by[owner] = (by[owner] ?? 0) + d;
      (ports[owner] ??= []).push(s.port);
    }
    const rcvbuf = counters1.RcvbufErrors - counters0.RcvbufErrors;
    const attributed = Object.values(by).reduce((a, b) => a + b, 0);
    return {
      dropsServer: by.server,
      dropsPeer: by.peer,
      dropsClient: by.client,
      dropsOther: by.other,
      // Machine totals over the row, and what the per-socket counts did not cover.
      rcvbufErrors: rcvbuf,
      inErrors: counters1.InErrors - counters0.InErrors,
      sndbufErrors: counters1.SndbufErrors - counters0.SndbufErrors,
      dropsUnattributed: Math.max(0, rcvbuf - attributed),
      socketsDropping: Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, v.length])),
    };
  };
  return { sample, finish };
}

/** onionturn's own drop counters (onionturn_dropped_total by reason) from its /metrics, summed over workers. */
/* global fetch */
export async function serverDrops(metricsUrl) {
  if (metricsUrl === undefined) return undefined;
  try {
    const res = await fetch(metricsUrl);
    const text = await res.text();
    const out = {};
    for (const m of text.matchAll(/^onionturn_dropped_total\{reason="([^"]+)"\} (\d+)/gm)) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
    return out;
  } catch {
    return undefined;
  }
}

/** b - a per reason, only the non-zero ones. */
export function dropsDelta(a, b) {
  if (a === undefined || b === undefined) return undefined;
  const out = {};
  for (const [k, v] of Object.entries(b)) if (v - (a[k] ?? 0) !== 0) out[k] = v - (a[k] ?? 0);
  return out;
}

/** The syscalls counted by BENCH_PERF_STAT: the event loop's waits, datagram and stream I/O, all. */
const PERF_EVENTS = [
  'raw_syscalls:sys_enter',
  'syscalls:sys_enter_epoll_wait',
  'syscalls:sys_enter_epoll_pwait',
  'syscalls:sys_enter_epoll_pwait2',
  'syscalls:sys_enter_recvmsg',
  'syscalls:sys_enter_recvmmsg',
  'syscalls:sys_enter_sendmsg',
  'syscalls:sys_enter_sendmmsg',
  'syscalls:sys_enter_read',
  'syscalls:sys_enter_write',
  'syscalls:sys_enter_writev',
  'context-switches',
  'task-clock',
];

/**
 * BENCH_PERF_STAT=1: `perf stat` on each of the server's processes (a primary and its workers are
 * counted apart) for one row; stop() ends them and returns { pid: { event: count } }.
 */
export function perfStat(spawn, pids) {
  const runs = pids.map((pid) => {
    const child = spawn('perf', ['stat', '-x', ',', '-e', PERF_EVENTS.join(','), '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let text = '';
    child.stderr.on('data', (c) => (text += c));
    return { pid, child, text: () => text, closed: new Promise((res) => child.on('close', res)) };
  });
  return async () => {
    const out = {};
    for (const r of runs) r.child.kill('SIGINT');
    for (const r of runs) {
      await r.closed;
      const counts = {};
      for (const line of r.text().split('\n')) {
        const f = line.split(',');
        if (f.length > 3 && /^[\d.]+$/.test(f[0])) counts[f[2].replace(/^(raw_)?syscalls:sys_enter_?/, '') || 'all'] = Number(f[0]);
      }
      out[r.pid] = counts;
    }
    return out;
  };
}
