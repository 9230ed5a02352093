// Every allocation the core holds, counted per username for the quota, and how one is deleted:
// its relay sockets closed, their ports back in the pool, the client told.
import type { Allocation } from './allocation.js';
import type { CoreEvents } from './core-options.js';
import type { PortPool } from './port-pool.js';
import type { LiveRelays } from './relay-registry.js';
import type { CoreStats } from './stats.js';

export class AllocationTable {
  readonly #all = new Set<Allocation>();
  /** By id: a mobility ticket names its allocation by id. */
  readonly #byId = new Map<number, Allocation>();
  readonly #perUser = new Map<string, number>();
  #nextId = 1;
  readonly #ports: PortPool;
  readonly #stats: CoreStats;
  readonly #events: CoreEvents | undefined;
  readonly #now: () => number;
  readonly #relays: LiveRelays;

  constructor(ports: PortPool, stats: CoreStats, events: CoreEvents | undefined, now: () => number, relays: LiveRelays) {
    this.#relays = relays;
    this.#ports = ports;
    this.#stats = stats;
    this.#events = events;
    this.#now = now;
  }

  get size(): number {
    return this.#all.size;
  }

  get all(): ReadonlySet<Allocation> {
    return this.#all;
  }

  /** Allocations held by this username (pending ones included). */
  countFor(username: string): number {
    return this.#perUser.get(username) ?? 0;
  }

  byId(id: number): Allocation | undefined {
    return this.#byId.get(id);
  }

  newId(): number {
    return this.#nextId++;
  }

  /** Counts the allocation from now on, while its relays are still being bound. */
  add(alloc: Allocation): void {
    this.#all.add(alloc);
    this.#byId.set(alloc.id, alloc);
    const user = alloc.auth.username;
    this.#perUser.set(user, (this.#perUser.get(user) ?? 0) + 1);
  }

  delete(alloc: Allocation, reason: string, counted = true): void {
    if (alloc.deleted) return;
    alloc.deleted = true;
    this.#all.delete(alloc);
    this.#byId.delete(alloc.id);
    const user = alloc.auth.username;
    const n = (this.#perUser.get(user) ?? 1) - 1;
    if (n <= 0) this.#perUser.delete(user);
    else this.#perUser.set(user, n);
    const now = this.#now();
    for (const relay of [alloc.relay4, alloc.relay6]) {
      if (!relay) continue;
      this.#relays.remove(relay);
      relay.socket?.close();
      relay.socket = undefined;
      this.#ports.give(relay.port, now);
    }
    alloc.permissions.clear();
    alloc.channels?.clear();
    if (alloc.client.allocation === alloc) {
      alloc.client.allocation = undefined;
      if (!alloc.client.closed) alloc.client.link.released?.();
    }
    if (counted) {
      this.#stats.allocationsDeleted++;
      this.#events?.event('allocation-deleted', { allocation: alloc.id, reason });
    }
  }
}
