// Named shapes for the private Tor network (the "lab"). Two mechanisms:
// - Delay, jitter and stalls: a shaping proxy (shaping-proxy.ts) sits in front of every relay's
//   ORPort, so an exit circuit crosses three shaped links (client-guard, guard-middle,
//   middle-exit) and an onion circuit pair six: a circuit round trip is about 6 x delayMs on the
//   exit path and 12 x delayMs to an onion service, plus tor's own ~8 ms (~96 ms onion).
// - The bottleneck: each relay's own BandwidthRate (read and write buckets, refilled every 10 ms),
//   shared by every circuit through the relay in both directions. The queue then builds inside
//   tor, where its circuit scheduler (EWMA) serves a quiet circuit before a bulk one, as on a real
//   busy relay. The proxy can rate-limit too (LinkShape.rateKbps), but as a FIFO whose buffer
//   includes the proxy's kernel receive buffer (~90 KB here, which Node cannot shrink): at
//   600 kbit/s that alone is > 1 s of queue shared by every circuit of the link, seconds of
//   delay that real relays (KIST-limited socket buffers) do not add.
import type { LinkShape } from './link-shaper.js';

export interface LabProfile {
  readonly name: string;
  readonly description: string;
  /** Shape of every relay's links; undefined = unshaped (today's loopback network). */
  readonly link: LinkShape | undefined;
  /** Each relay's BandwidthRate in kbit/s (tor's minimum is 614.4); undefined = unlimited. */
  readonly relayRateKbps?: number;
  /** More torrc lines for every tor of the network. */
  readonly torrc?: readonly string[];
  /** Reach the server through an onion service instead of an exit. */
  readonly onion: boolean;
  /** Keep a bulk download running through the network (competing traffic through the same relays). */
  readonly bulkDownload: boolean;
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
      "as tor-typical (jitter +- 10 ms, a 400 ms stall per link every ~1 min) with relays limited to 614 kbit/s (tor's minimum) and a bulk download through them",
    link: { delayMs: 40, jitterMs: 10, stall: { meanEveryMs: 60_000, forMs: 400 } },
    relayRateKbps: 614.4,
    // Tor's sockets with fixed 8 KiB buffers: with loopback's autotuned ones (MBs) the bulk
    // download's bytes queued in kernel buffers in front of every other circuit's (probes then
    // timed out); with these the idle circuit round trip under the bulk load is ~2-4 s, still
    // too slow for a call to set up in 90 s (an open problem, see README).
    torrc: ['ConstrainedSockets 1', 'ConstrainedSockSize 8192'],
    onion: false,
    bulkDownload: true,
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
