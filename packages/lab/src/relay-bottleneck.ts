// A congested relay for the lab: one relay's OR links (what it sends and what it receives, to and
// from clients and the other relays) limited by the kernel, htb on the loopback of the lab's own
// network namespace, each direction with a drop-tail queue. Why the kernel and not the shaping
// proxy's rate: a proxy that stops reading never makes tor's TCP lose a segment, so TCP's window
// stays large, tor's KIST scheduler keeps writing, and the backlog piles up in tor's per-connection
// outbuf, a FIFO shared by every circuit of the link, where the circuit scheduler cannot favour a
// quiet circuit (bare echoes took 1.5-4.4 s behind a bulk download). A queue that drops, as a real
// relay's uplink does, shrinks TCP's window, KIST writes less, and the cells wait in the circuit
// queues instead: echoes beside a bulk download that fills the link stay at the path's ~250 ms.
//
// Classifying one relay's packets on a shared loopback: connections to it arrive at its published
// ORPort (the shaping proxy's port: `dport`) and it answers them from its real ORPort (`sport`);
// connections it makes leave from an address of its own (tor's OutboundBindAddressOR: `src`, and
// their answers `dst`). The commands are built here (pure, unit-tested) and run by applyBottleneck.
import { execFileSync } from 'node:child_process';
import { LAB_NAMESPACE_ENV } from './lab-namespace.js';
import { requireTool, TOOLS } from './tools.js';

/** A congested relay's links (on a loopback with an Ethernet MTU: a 64 KB packet never fits the queue). */
export interface RelayBottleneck {
  /** Each direction's rate, kbit/s. */
  readonly rateKbps: number;
  /** Each direction's drop-tail queue, in ms of the rate (at least two full-size packets). */
  readonly queueMs: number;
}

/** Where the congested relay's packets are told apart (see the header). */
export interface BottleneckRelay {
  /** The port its connections arrive at (the shaping proxy's, or its ORPort when unshaped). */
  readonly publishedOrPort: number;
  /** The port it answers them from. */
  readonly orPort: number;
  /** Its OutboundBindAddressOR: the source of the connections it makes. */
  readonly outboundAddress: string;
}

/** The congested relay's OutboundBindAddressOR (any 127/8 address is local on lo). */
export const BOTTLENECK_OUTBOUND_ADDRESS = '127.0.1.1';

/** An Ethernet frame's worth: the queue holds at least two. */
const FULL_PACKET_BYTES = 1514;

/** The queue's size in bytes for a rate and a time. */
export function queueBytes(b: RelayBottleneck): number {
  return Math.max(2 * FULL_PACKET_BYTES, Math.round((b.rateKbps * 1000 * b.queueMs) / 8 / 1000));
}

/**
 * tc argument lists (without `tc`) that limit `relay`'s links on `dev`: an htb root whose default
 * class is unlimited, one class per direction at the rate with a bfifo of queueBytes, and u32
 * filters sending the relay's packets there.
 */
export function bottleneckTcCommands(b: RelayBottleneck, relay: BottleneckRelay, dev = 'lo'): string[][] {
  if (!(b.rateKbps > 0) || !(b.queueMs > 0)) throw new Error(`a bottleneck needs rateKbps > 0 and queueMs > 0, not ${JSON.stringify(b)}`);
  const rate = `${b.rateKbps}kbit`;
  // Burst: two packets, so the class sends at its rate, not in lumps.
  const burst = String(2 * FULL_PACKET_BYTES);
  const limit = String(queueBytes(b));
  const cmds: string[][] = [
    ['qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '1'],
    ['class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '100gbit', 'quantum', '60000'],
  ];
  const directions: [classid: string, matches: string[][]][] = [
    // What the relay receives: on connections to it, and answers to connections it made.
    [
      '1:10',
      [
        ['ip', 'dport', String(relay.publishedOrPort), '0xffff'],
        ['ip', 'dst', `${relay.outboundAddress}/32`],
      ],
    ],
    // What it sends: answers on connections to it, and on connections it made.
    [
      '1:20',
      [
        ['ip', 'sport', String(relay.orPort), '0xffff'],
        ['ip', 'src', `${relay.outboundAddress}/32`],
      ],
    ],
  ];
  for (const [classid, matches] of directions) {
    const minor = classid.slice(2);
    cmds.push([
      'class',
      'add',
      'dev',
      dev,
      'parent',
      '1:',
      'classid',
      classid,
      'htb',
      'rate',
      rate,
      'ceil',
      rate,
      'burst',
      burst,
      'cburst',
      burst,
      'quantum',
      String(FULL_PACKET_BYTES),
    ]);
    cmds.push(['qdisc', 'add', 'dev', dev, 'parent', classid, 'handle', `${minor}:`, 'bfifo', 'limit', limit]);
    for (const m of matches) cmds.push(['filter', 'add', 'dev', dev, 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', ...m, 'flowid', classid]);
  }
  return cmds;
}

/** Bytes sent and packets dropped by each direction's class. */
export interface BottleneckCounters {
  readonly in: { readonly sentBytes: number; readonly dropped: number };
  readonly out: { readonly sentBytes: number; readonly dropped: number };
}

/** Reads the two classes' counters out of `tc -s class show` text. */
export function parseBottleneckCounters(text: string): BottleneckCounters {
  const of = (classid: string): { sentBytes: number; dropped: number } => {
    const m = new RegExp(`class htb ${classid} [^\\n]*\\n\\s*Sent (\\d+) bytes \\d+ pkt \\(dropped (\\d+)`).exec(text);
    if (!m) throw new Error(`no htb class ${classid} in tc's output`);
    return { sentBytes: Number(m[1]), dropped: Number(m[2]) };
  };
  return { in: of('1:10'), out: of('1:20') };
}

/** The installed bottleneck of the current namespace. */
export interface AppliedBottleneck {
  readonly bottleneck: RelayBottleneck;
  counters(): BottleneckCounters;
}

/**
 * Installs the bottleneck on this process's own namespace's loopback. Refuses outside a lab
 * namespace (runInLabNamespace): on the host's loopback it would slow everything else on it.
 */
export function applyBottleneck(b: RelayBottleneck, relay: BottleneckRelay): AppliedBottleneck {
  if (!process.env[LAB_NAMESPACE_ENV]) {
    throw new Error(`a relay bottleneck shapes the loopback of the namespace it runs in: run it inside a lab namespace (runInLabNamespace), not on the host`);
  }
  const tc = requireTool(TOOLS.tc);
  for (const args of bottleneckTcCommands(b, relay)) execFileSync(tc, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  return {
    bottleneck: b,
    counters: () => parseBottleneckCounters(execFileSync(tc, ['-s', 'class', 'show', 'dev', 'lo'], { encoding: 'utf8' })),
  };
}
