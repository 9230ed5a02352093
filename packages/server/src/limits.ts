// Lifetimes and quotas with their defaults. Every one of these has a CLI flag.
import { DEFAULT_DESTINATION_LIMITS } from './destination-budgets.js';

export interface Lifetimes {
  /** Allocation lifetime when the client asks for less or nothing (RFC 8656: 600 s). */
  readonly allocationDefaultSec: number;
  readonly allocationMaxSec: number;
  readonly permissionSec: number;
  readonly channelSec: number;
  /** How long a nonce stays good before 438 Stale Nonce. */
  readonly nonceSec: number;
}

export interface Limits {
  /** Allocations in total (508 beyond). */
  readonly allocations: number;
  /** Allocations per username (486 beyond). */
  readonly allocationsPerUser: number;
  readonly permissionsPerAllocation: number;
  readonly channelsPerAllocation: number;
  /** Distinct peer ip:port pairs an allocation may talk to. */
  readonly peersPerAllocation: number;
  /** New peers (addresses or ip:port pairs) per second per allocation. */
  readonly newPeersPerSecond: number;
  /**
   * Datagrams sent to the ports of one peer address that have never answered; later ones are
   * dropped (consent). Per address, not per ip:port: hopping ports does not buy a new budget.
   */
  readonly unansweredSends: number;
  /** Datagrams one allocation sends to all peers that have never answered, together. */
  readonly unansweredSendsPerAllocation: number;
  /** Relayed bytes per second per allocation, both directions together; 0 = unlimited. */
  readonly bandwidthPerAllocation: number;
  /** Relayed bytes per second over all allocations; 0 = unlimited. */
  readonly bandwidthTotal: number;
  /** Bytes per second to one peer address over all allocations (destination-budgets.ts); 0 = unlimited. */
  readonly bandwidthPerDestination: number;
  /** Datagrams per second to one peer address over all allocations; 0 = unlimited. */
  readonly packetsPerDestination: number;
  /** Peer addresses whose budgets are tracked at once. */
  readonly destinations: number;
}

export const DEFAULT_LIFETIMES: Lifetimes = {
  allocationDefaultSec: 600,
  allocationMaxSec: 3600,
  permissionSec: 300,
  channelSec: 600,
  nonceSec: 600,
};

export const DEFAULT_LIMITS: Limits = {
  allocations: 10_000,
  allocationsPerUser: 16,
  permissionsPerAllocation: 64,
  channelsPerAllocation: 64,
  peersPerAllocation: 256,
  newPeersPerSecond: 20,
  // Large enough for a burst that is in flight before the first answer is read (a 1 MB flood of
  // 1000-byte datagrams); a peer that never answers gets at most this much, then nothing.
  unansweredSends: 2000,
  // Two such bursts: an allocation spraying addresses cannot make this host a flood source.
  unansweredSendsPerAllocation: 4000,
  // 10 MB/s (80 Mbit/s) covers HD video calls; the total keeps one host from being a flood cannon.
  bandwidthPerAllocation: 10_000_000,
  bandwidthTotal: 1_000_000_000,
  // Why these: destination-budgets.ts and the README's exit-side section.
  bandwidthPerDestination: DEFAULT_DESTINATION_LIMITS.bytesPerSecond,
  packetsPerDestination: DEFAULT_DESTINATION_LIMITS.packetsPerSecond,
  destinations: DEFAULT_DESTINATION_LIMITS.maxDestinations,
};

/** Channels stay reserved this long after they expire before the number or peer can be rebound. */
export const CHANNEL_REBIND_GUARD_MS = 300_000;

/**
 * How long an allocation with a mobility ticket outlives its client's connection (RFC 8016):
 * time for the client to reach the server again (a new Tor circuit) and take it over; its
 * remaining lifetime is cut to this when the connection closes.
 */
export const MOBILITY_GRACE_MS = 60_000;
