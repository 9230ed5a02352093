// A congested relay for the lab: one relay runs in a network namespace of its own, reached only
// through a router namespace whose two links (towards the relay, back to the lab) are limited by
// htb with drop-tail queues. Why so, and not the shaping proxy's rate or a qdisc on the lab's
// loopback:
// - a proxy that stops reading never makes tor's TCP lose a segment, so TCP's window stays large,
//   tor's KIST scheduler keeps writing, and the backlog piles up in tor's per-connection outbuf,
//   a FIFO shared by every circuit of the link, where the circuit scheduler cannot favour a quiet
//   circuit (bare echoes took 1.5-4.4 s behind a bulk download);
// - a qdisc on the sending host's own interface drops "locally": the socket is told at once and
//   backs off on timers instead of recovering from duplicate ACKs, and a new connection behind a
//   full queue could take more than 30 s to open (echoes 1.4-4.2 s, circuits timing out).
// A router's queue drops where a real relay's uplink does: TCP sees the loss, its window shrinks,
// KIST writes less, and the backlog waits in tor's circuit queues. (Bare echoes took 0.7-3.3 s
// while the bulk rode the same tor connections as the echo: see tor-network.ts.)
//
// Each link queues the bulk download's connections apart from the others', as a relay host's own
// qdisc does by default (fq_codel: a queue per flow); this kernel has neither fq_codel nor sfq,
// so the router sorts by address (the bulk's relays have one of their own on the lab's side)
// into two htb classes, each guaranteed half the rate, lending the rest while idle, and each
// with its own drop-tail queue. One drop-tail FIFO for both let the bulk keep it full: the
// call's thin connections lost a segment in most of their round trips, their retransmissions
// too, and backed off to timeouts of seconds (bare streams beside the bulk stalled for 8-36 s).
//
//   lab namespace (everything else)        router                           relay namespace
//   LAB_ADDRESS,                ot-lm ---- ot-ml [htb]   [htb] ot-mr ---- ot-rm RELAY_ADDRESS
//   BULK_ADDRESS (bulk relays)
//
// The commands are built here (pure, unit-tested) and run by BottleneckNetwork.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { LAB_NAMESPACE_ENV } from './lab-namespace.js';
import { NetNamespace, runTool } from './netns.js';
import type { LabNamespaceSettings } from './lab-profiles.js';
import { requireTool, TOOLS } from './tools.js';

/** A congested relay's links (each direction). */
export interface RelayBottleneck {
  /** Each direction's rate, kbit/s. */
  readonly rateKbps: number;
  /** Each direction's drop-tail queue, in ms of the rate (at least two full-size packets). */
  readonly queueMs: number;
}

/** The lab's side of the router link: relays in the lab namespace listen here too. */
export const BOTTLENECK_LAB_ADDRESS = '10.77.1.1';
/** The lab's side of the router link for the bulk download's relays: the router queues their traffic apart. */
export const BOTTLENECK_BULK_ADDRESS = '10.77.1.2';
/** The congested relay's address in its own namespace. */
export const BOTTLENECK_RELAY_ADDRESS = '10.77.2.1';
const ROUTER_LAB_SIDE = '10.77.1.254';
const ROUTER_RELAY_SIDE = '10.77.2.254';

/** An Ethernet frame's worth: the queue holds at least two. */
const FULL_PACKET_BYTES = 1514;

/** The queue's size in bytes for a rate and a time. */
export function queueBytes(b: RelayBottleneck): number {
  return Math.max(2 * FULL_PACKET_BYTES, Math.round((b.rateKbps * 1000 * b.queueMs) / 8 / 1000));
}

/** One command: run in the namespace named (undefined: where the caller is), argv without the binary's path. */
export interface NamespacedCommand {
  readonly ns: string | undefined;
  readonly command: 'ip' | 'tc' | 'sysctl';
  readonly args: readonly string[];
}

/**
 * The commands that join the relay and router namespaces (made with lo up, see NetNamespace) to
 * the lab namespace they are run from: two veth pairs, addresses and routes, forwarding in the
 * router, the relay namespace's TCP buffers like the lab's, and the queues on each of the router's links.
 */
export function bottleneckNetworkCommands(
  b: RelayBottleneck,
  names: { readonly relay: string; readonly router: string },
  tcp: Pick<LabNamespaceSettings, 'tcpRmem' | 'tcpWmem'>,
): NamespacedCommand[] {
  if (!(b.rateKbps > 0) || !(b.queueMs > 0)) throw new Error(`a bottleneck needs rateKbps > 0 and queueMs > 0, not ${JSON.stringify(b)}`);
  const here = (command: NamespacedCommand['command'], ...args: string[]): NamespacedCommand => ({ ns: undefined, command, args });
  const inRelay = (command: NamespacedCommand['command'], ...args: string[]): NamespacedCommand => ({ ns: names.relay, command, args });
  const inRouter = (command: NamespacedCommand['command'], ...args: string[]): NamespacedCommand => ({ ns: names.router, command, args });
  // On each of the router's links: htb at the rate, with a burst of two packets (so it sends at
  // its rate, not in lumps); a class for the bulk's relays' traffic and a default one for the
  // rest, each with half the rate guaranteed and all of it while the other is idle, each with a
  // drop-tail queue of queueMs at the full rate.
  const burst = ['burst', String(2 * FULL_PACKET_BYTES), 'cburst', String(2 * FULL_PACKET_BYTES)];
  const half = `${b.rateKbps / 2}kbit`;
  const queues = (dev: string): NamespacedCommand[] => [
    inRouter('tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '10'),
    inRouter('tc', 'class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', `${b.rateKbps}kbit`, ...burst),
    ...['10', '20'].flatMap((c) => [
      inRouter(
        'tc',
        'class',
        'add',
        'dev',
        dev,
        'parent',
        '1:1',
        'classid',
        `1:${c}`,
        'htb',
        'rate',
        half,
        'ceil',
        `${b.rateKbps}kbit`,
        ...burst,
        'quantum',
        String(FULL_PACKET_BYTES),
      ),
      inRouter('tc', 'qdisc', 'add', 'dev', dev, 'parent', `1:${c}`, 'bfifo', 'limit', String(queueBytes(b))),
    ]),
    ...['src', 'dst'].map((end) =>
      inRouter(
        'tc',
        'filter',
        'add',
        'dev',
        dev,
        'parent',
        '1:',
        'protocol',
        'ip',
        'prio',
        '1',
        'u32',
        'match',
        'ip',
        end,
        `${BOTTLENECK_BULK_ADDRESS}/32`,
        'flowid',
        '1:20',
      ),
    ),
  ];
  return [
    here('ip', 'link', 'add', 'ot-lm', 'type', 'veth', 'peer', 'name', 'ot-ml'),
    here('ip', 'link', 'set', 'ot-ml', 'netns', names.router),
    here('ip', 'link', 'add', 'ot-rm', 'type', 'veth', 'peer', 'name', 'ot-mr'),
    here('ip', 'link', 'set', 'ot-rm', 'netns', names.relay),
    here('ip', 'link', 'set', 'ot-mr', 'netns', names.router),
    here('ip', 'addr', 'add', `${BOTTLENECK_LAB_ADDRESS}/24`, 'dev', 'ot-lm'),
    here('ip', 'addr', 'add', `${BOTTLENECK_BULK_ADDRESS}/24`, 'dev', 'ot-lm'),
    here('ip', 'link', 'set', 'ot-lm', 'up'),
    here('ip', 'route', 'add', `${BOTTLENECK_RELAY_ADDRESS}/32`, 'via', ROUTER_LAB_SIDE),
    inRouter('ip', 'addr', 'add', `${ROUTER_LAB_SIDE}/24`, 'dev', 'ot-ml'),
    inRouter('ip', 'addr', 'add', `${ROUTER_RELAY_SIDE}/24`, 'dev', 'ot-mr'),
    inRouter('ip', 'link', 'set', 'ot-ml', 'up'),
    inRouter('ip', 'link', 'set', 'ot-mr', 'up'),
    inRouter('sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'),
    // Towards the relay: what it receives. Back to the lab: what it sends.
    ...queues('ot-mr'),
    ...queues('ot-ml'),
    inRelay('ip', 'addr', 'add', `${BOTTLENECK_RELAY_ADDRESS}/24`, 'dev', 'ot-rm'),
    inRelay('ip', 'link', 'set', 'ot-rm', 'up'),
    inRelay('ip', 'route', 'add', 'default', 'via', ROUTER_RELAY_SIDE),
    inRelay('sysctl', '-q', '-w', `net.ipv4.tcp_rmem=${tcp.tcpRmem}`, `net.ipv4.tcp_wmem=${tcp.tcpWmem}`),
  ];
}

/** Bytes sent and packets dropped by each direction's queue. */
export interface BottleneckCounters {
  /** Towards the relay. */
  readonly in: { readonly sentBytes: number; readonly dropped: number };
  /** From the relay. */
  readonly out: { readonly sentBytes: number; readonly dropped: number };
}

/** Reads a link's counters (its htb, all classes) out of `tc -s qdisc show dev X` text. */
export function parseQdiscCounters(text: string): { sentBytes: number; dropped: number } {
  const m = /qdisc htb 1: root[^\n]*\n\s*Sent (\d+) bytes \d+ pkt \(dropped (\d+)/.exec(text);
  if (!m) throw new Error("no htb root qdisc in tc's output");
  return { sentBytes: Number(m[1]), dropped: Number(m[2]) };
}

/** The relay and router namespaces of a congested relay; delete() removes both. */
export class BottleneckNetwork {
  private constructor(
    readonly bottleneck: RelayBottleneck,
    readonly relay: NetNamespace,
    readonly router: NetNamespace,
    readonly tc: string,
  ) {}

  get relayNamespace(): string {
    return this.relay.name;
  }

  get routerNamespace(): string {
    return this.router.name;
  }

  /**
   * Builds them from inside a lab namespace (runInLabNamespace), the relay's with the lab
   * namespace's TCP buffers; refuses on the host, whose routes it would change. Needs root.
   */
  static create(b: RelayBottleneck): BottleneckNetwork {
    if (!process.env[LAB_NAMESPACE_ENV]) {
      throw new Error('a relay bottleneck joins namespaces to the one it runs in: run it inside a lab namespace (runInLabNamespace), not on the host');
    }
    const tc = requireTool(TOOLS.tc);
    // /proc/sys/net shows the reading process's own namespace: the lab's.
    const sysctl = (name: string): string => readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().split(/\s+/).join(' ');
    const tcp = { tcpRmem: sysctl('tcp_rmem'), tcpWmem: sysctl('tcp_wmem') };
    // Named after the lab namespace: whoever made the lab finds (and can delete) what a child killed
    // too soon left behind, and no one else's.
    const prefix = `${process.env[LAB_NAMESPACE_ENV]}-${randomBytes(2).toString('hex')}`;
    const relay = NetNamespace.create([], `${prefix}-relay`);
    let router: NetNamespace;
    try {
      router = NetNamespace.create([], `${prefix}-router`);
    } catch (err) {
      relay.delete();
      throw err;
    }
    const net = new BottleneckNetwork(b, relay, router, tc);
    try {
      for (const c of bottleneckNetworkCommands(b, { relay: relay.name, router: router.name }, tcp)) net.#run(c);
    } catch (err) {
      net.delete();
      throw err;
    }
    return net;
  }

  #run(c: NamespacedCommand): string {
    // NetNamespace found ip (requireTool) as it made the namespaces.
    const bin = c.command === 'ip' ? this.relay.ip : c.command === 'tc' ? this.tc : 'sysctl';
    const ns = c.ns === undefined ? undefined : c.ns === this.relay.name ? this.relay : this.router;
    if (ns !== undefined) return ns.run(bin, c.args);
    return runTool(bin, c.args, `${c.command} ${c.args.join(' ')}`);
  }

  /** argv that runs command inside the relay namespace (for ProcessGroup.spawn). */
  wrapRelay(command: string, args: readonly string[]): [string, string[]] {
    return this.relay.wrap(command, args);
  }

  counters(): BottleneckCounters {
    const of = (dev: string): { sentBytes: number; dropped: number } =>
      parseQdiscCounters(this.#run({ ns: this.router.name, command: 'tc', args: ['-s', 'qdisc', 'show', 'dev', dev] }));
    return { in: of('ot-mr'), out: of('ot-ml') };
  }

  /** Deletes both namespaces (the relay's processes must be stopped first); the lab's veth end goes with its peer. */
  delete(): void {
    this.relay.delete();
    this.router.delete();
  }
}
