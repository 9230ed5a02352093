// Named shapes for the private Tor network (the "lab"). Two mechanisms:
// - Delay, jitter and stalls: a shaping proxy (shaping-proxy.ts) sits in front of every relay's
//   ORPort, so an exit circuit crosses three shaped links (client-guard, guard-middle,
//   middle-exit) and an onion circuit pair six: a circuit round trip is about 6 x delayMs on the
//   exit path and 12 x delayMs to an onion service, plus tor's own ~8 ms (~96 ms onion).
// - The bottleneck: tor-typical and tor-onion use each relay's own RelayBandwidthRate (read and
//   write buckets, refilled every 10 ms). tor-congested puts one relay behind a router whose
//   links are limited with drop-tail queues (relay-bottleneck.ts), inside a network namespace
//   with small TCP buffers (see its comments for why both).
import type { LinkShape } from './link-shaper.js';
import type { RelayBottleneck } from './relay-bottleneck.js';

/** A lab namespace's loopback MTU and net.ipv4.tcp_rmem / tcp_wmem ("min default max" bytes). */
export interface LabNamespaceSettings {
  readonly mtu: number;
  readonly tcpRmem: string;
  readonly tcpWmem: string;
}

export interface LabProfile {
  readonly name: string;
  readonly description: string;
  /** Shape of every relay's links; undefined = unshaped (today's loopback network). */
  readonly link: LinkShape | undefined;
  /** Each relay's BandwidthRate in kbit/s (tor's minimum is 614.4); undefined = unlimited. */
  readonly relayRateKbps?: number;
  /** One relay behind a router with limited links (needs `namespace`), the middle of every circuit of the client. */
  readonly bottleneck?: RelayBottleneck;
  /** More torrc lines for every tor of the network. */
  readonly torrc?: readonly string[];
  /** Reach the server through an onion service instead of an exit. */
  readonly onion: boolean;
  /** Keep a bulk download running through the network (competing traffic through the same relays). */
  readonly bulkDownload: boolean;
  /**
   * A second user's tor client (bench:call's peer b), as two users of a call have two machines;
   * with a bottleneck, its circuits go around the congested relay. Without, both peers share one.
   */
  readonly secondClient?: boolean;
  /**
   * Run the whole lab (and what talks to it) inside a network namespace of its own with these
   * loopback and TCP settings (lab-namespace.ts); benchmarks re-run themselves inside it.
   */
  readonly namespace?: LabNamespaceSettings;
  /** The circuit round trip this profile aims at (exit path, or onion path for onion profiles), ms. */
  readonly targetCircuitRttMs: number;
}

const TYPICAL_LINK: LinkShape = {
  delayMs: 40,
  jitterMs: 5,
  stall: { meanEveryMs: 120_000, forMs: 300 },
};

export const LAB_PROFILES: Readonly<Record<string, LabProfile>> = {
  ideal: {
    name: 'ideal',
    description: 'unshaped loopback network (~8 ms circuit round trip, MiB/s)',
    link: undefined,
    onion: false,
    bulkDownload: false,
    targetCircuitRttMs: 8,
  },
  'tor-typical': {
    name: 'tor-typical',
    description: 'exit circuit round trip ~250 ms (40 +- 5 ms per link and direction, a 300 ms stall per link every ~2 min), relays limited to 4 Mbit/s',
    link: TYPICAL_LINK,
    relayRateKbps: 4000,
    onion: false,
    bulkDownload: false,
    targetCircuitRttMs: 250,
  },
  'tor-congested': {
    name: 'tor-congested',
    description:
      "as tor-typical (jitter +- 10 ms, a 400 ms stall per link every ~1 min) with one relay, crossed by every circuit of one user's tor (peer b's goes around it), behind a router limited to 600 kbit/s per direction (queued per flow, drop-tail queues of 200 ms), and a bulk download through it",
    link: { delayMs: 40, jitterMs: 10, stall: { meanEveryMs: 60_000, forMs: 400 } },
    // The bottleneck is a router's, with a queue that drops (relay-bottleneck.ts says why not the
    // proxies' rate, nor a qdisc on the lab's loopback, nor tor's RelayBandwidthRate: that
    // bucket counts only "relayed" connections, and in a 3-relay network the relays' own
    // circuits share those connections, so it held and released the bulk in bursts). The
    // congested relay has no shaping proxy (its links are the router's; a proxy on either side
    // would hold its backlog where the router should drop it), so a circuit crosses fewer delayed
    // links: measured idle, bare echoes 77-111 ms, not tor-typical's 250. Beside the bulk
    // download (on relays of its own, see tor-network.ts; the router then carries 600 kbit/s
    // each way, queued apart from the rest): bare echoes 79-163 ms (337-441 ms in one queue).
    bottleneck: { rateKbps: 600, queueMs: 200 },
    // Tor's own FIFO per connection, the outbuf (cells leave the circuit scheduler for it while
    // under the consensus' orconn_high, 32 KB = 0.43 s at 600 kbit/s): scaled down with the rate
    // (4 KB), with small socket buffers (with tor's and Linux's defaults behind the router,
    // echoes were no better: 1.3-3.3 s, measured while the bulk still shared the call's relays).
    torrc: ['ConstrainedSockets 1', 'ConstrainedSockSize 8192', 'ConsensusParams orconn_high=4096 orconn_low=2048'],
    // Loopback's socket buffers (send buffers autotuned to MBs) are seconds of FIFO at 600 kbit/s
    // in front of every circuit of a link: the bench runs this profile in a network namespace of
    // its own whose TCP buffers are small (net.ipv4.tcp_rmem/wmem are per namespace; the
    // congested relay's namespace takes the same) and whose loopback has an Ethernet MTU (so
    // tor's KIST sees segments of 1448 B, not 64 KB).
    namespace: { mtu: 1500, tcpRmem: '4096 8192 16384', tcpWmem: '4096 8192 16384' },
    onion: false,
    bulkDownload: true,
    // The call's two users have a tor each, and the congested relay is on one user's circuits:
    // a media packet crosses each of its router's queues once (towards the relay, and back). With
    // one client, both peers' circuits crossed it, so the call's media took each queue twice and
    // the call met 300 kbit/s less the bulk's share, not 600.
    secondClient: true,
    targetCircuitRttMs: 250,
  },
  'tor-onion': {
    name: 'tor-onion',
    description: 'tor-typical relays, 35 +- 5 ms per link and direction, server behind an onion service (six links: round trip ~500 ms)',
    // Twelve link crossings per round trip plus the loopback onion path's own ~96 ms.
    link: { ...TYPICAL_LINK, delayMs: 35 },
    relayRateKbps: 4000,
    onion: true,
    bulkDownload: false,
    targetCircuitRttMs: 500,
  },
};

export const LAB_PROFILE_NAMES: readonly string[] = Object.keys(LAB_PROFILES);

/** The profile called `name`; throws with the known names otherwise. */
export function labProfile(name: string): LabProfile {
  const p = LAB_PROFILES[name];
  if (!p) throw new Error(`unknown lab profile "${name}" (known: ${LAB_PROFILE_NAMES.join(', ')})`);
  return p;
}
