// Budgets per destination IP address across the whole server (issue 15, item 4): bytes/s and
// datagrams/s that all allocations together may send to one peer address. Per-allocation
// bandwidth stops one client; this stops many clients (or one client with many allocations and
// usernames) from aiming the exit at one victim. A Permission keeps its entry, so the relay path
// takes from two token buckets with no lookup or allocation per datagram. The table is bounded:
// entries whose buckets are full again (idle) are removed on a sweep, and when it is full of busy
// destinations the newcomers share one overflow entry (stricter, never unbounded).
import { TokenBucket } from '@onionturn/io';
import { formatIp } from '@onionturn/protocol';
import { canonical } from './peer-policy.js';

export interface DestinationLimits {
  /** Bytes per second to one destination address over all allocations; 0 = unlimited. */
  readonly bytesPerSecond: number;
  /** Datagrams per second to one destination address over all allocations; 0 = unlimited. */
  readonly packetsPerSecond: number;
  /** Destinations tracked at once. */
  readonly maxDestinations: number;
}

export const DEFAULT_DESTINATION_LIMITS: DestinationLimits = {
  // 40 Mbit/s: twenty HD calls to one media server, far beyond what one Tor circuit carries,
  // yet one exit cannot pour its whole bandwidth (1 GB/s total by default) onto one address.
  bytesPerSecond: 5_000_000,
  // Small-datagram floods (DNS queries, game-server or SIP probes) cost a target per packet.
  packetsPerSecond: 10_000,
  // Each entry is ~200 bytes: 100,000 is ~20 MB at worst; live permissions bound it anyway.
  maxDestinations: 100_000,
};

const SWEEP_MS = 10_000;

export class DestinationEntry {
  /** Set when the table dropped the entry (idle): the next send looks the address up again. */
  evicted = false;
  // One second of burst: a budget, not a shaper. A budget of 0 is unlimited (TokenBucket's rate 0).
  readonly #packets: TokenBucket;
  readonly #bytes: TokenBucket;

  constructor(limits: DestinationLimits, now: number) {
    this.#packets = new TokenBucket(limits.packetsPerSecond, limits.packetsPerSecond, now);
    this.#bytes = new TokenBucket(limits.bytesPerSecond, limits.bytesPerSecond, now);
  }

  /** Takes one datagram of `len` bytes; false (drop, nothing taken) when either budget is spent. */
  take(len: number, now: number): boolean {
    if (!this.#packets.has(1, now) || !this.#bytes.has(len, now)) return false;
    this.#packets.take(1, now);
    this.#bytes.take(len, now);
    return true;
  }

  /** Both budgets full again: forgetting this entry changes nothing. */
  idle(now: number): boolean {
    return this.#packets.full(now) && this.#bytes.full(now);
  }
}

export class DestinationBudgets {
  readonly #limits: DestinationLimits;
  readonly #entries = new Map<string, DestinationEntry>();
  readonly #overflow: DestinationEntry;
  #lastSweep: number;
  readonly enabled: boolean;

  constructor(limits: DestinationLimits, now: number) {
    this.#limits = limits;
    this.enabled = limits.bytesPerSecond > 0 || limits.packetsPerSecond > 0;
    this.#overflow = new DestinationEntry(limits, now);
    this.#lastSweep = now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The entry of a destination address (4 or 16 bytes; IPv4-mapped counts as IPv4). Not per packet. */
  entry(ip: Buffer, now: number): DestinationEntry {
    const key = formatIp(canonical(ip));
    const found = this.#entries.get(key);
    if (found !== undefined) return found;
    if (this.#entries.size >= this.#limits.maxDestinations) {
      this.sweep(now);
      if (this.#entries.size >= this.#limits.maxDestinations) return this.#overflow;
    }
    const e = new DestinationEntry(this.#limits, now);
    this.#entries.set(key, e);
    return e;
  }

  /** The core's tick: a sweep every SWEEP_MS (a table of busy destinations is not walked every second). */
  tick(now: number): void {
    if (now - this.#lastSweep >= SWEEP_MS) this.sweep(now);
  }

  /** Drops entries whose budgets are full again: forgetting them changes nothing. */
  sweep(now: number): void {
    this.#lastSweep = now;
    for (const [key, e] of this.#entries) {
      if (e.idle(now)) {
        e.evicted = true;
        this.#entries.delete(key);
      }
    }
  }
}
