// Named shapes for the private Tor network (the "lab"): how each relay's links are shaped.
// A shaping proxy sits in front of every relay's ORPort, so an exit circuit crosses three shaped
// links (client-guard, guard-middle, middle-exit) and an onion circuit pair six: a circuit round
// trip is about 6 x delayMs on the exit path and 12 x delayMs to an onion service, plus tor's
// own ~8 ms (~96 ms for onion) on loopback. The bottleneck is per relay and direction, shared by
// every circuit through that relay.
import type { LinkShape } from './link-shaper.js';

export interface LabProfile {
  readonly name: string;
  readonly description: string;
  /** Shape of every relay's links; undefined = unshaped (today's loopback network). */
  readonly link: LinkShape | undefined;
  /** Reach the server through an onion service instead of an exit. */
  readonly onion: boolean;
  /** Keep a bulk download running through the network (competing traffic). */
  readonly bulkDownload: boolean;
  /** The exit-path circuit round trip this profile aims at, ms (for reports). */
  readonly targetCircuitRttMs: number;
}

const TYPICAL_LINK: LinkShape = {
  delayMs: 40,
  jitterMs: 5,
  rateKbps: 4000,
  queueMs: 200,
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
    description: 'exit circuit round trip ~250 ms (40 +- 5 ms per link and direction), 4 Mbit/s per relay, rare 300 ms stalls',
    link: TYPICAL_LINK,
    onion: false,
    bulkDownload: false,
    targetCircuitRttMs: 250,
  },
  'tor-congested': {
    name: 'tor-congested',
    description: 'as tor-typical with a 600 kbit/s bottleneck per relay, shared with a bulk download, 400 ms stalls',
    link: { ...TYPICAL_LINK, jitterMs: 10, rateKbps: 600, queueMs: 300, stall: { meanEveryMs: 60_000, forMs: 400 } },
    onion: false,
    bulkDownload: true,
    targetCircuitRttMs: 250,
  },
  'tor-onion': {
    name: 'tor-onion',
    description: 'tor-typical links, server behind an onion service (round trip ~500 ms)',
    link: TYPICAL_LINK,
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
