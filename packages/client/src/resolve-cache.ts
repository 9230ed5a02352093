// Answers of Tor's RESOLVE, kept for a fixed time: Tor's reply carries no TTL. Keyed by the
// isolation key as well as the name, so two identities (two SOCKS usernames, two per-flow
// circuits) never share a lookup, and one cannot learn what the other looked up. Bounded.
import type { SocksAddress } from './socks5-server-codec.js';

/** How long an answer is reused (ms). Short: a name's address may move, and Tor caches too. */
export const RESOLVE_CACHE_MS = 60_000;
/** Entries held at most; the oldest goes first. */
export const RESOLVE_CACHE_ENTRIES = 1024;

interface Entry {
  readonly address: SocksAddress & { readonly kind: 'ip' };
  readonly expiresAt: number;
}

export class ResolveCache {
  readonly #entries = new Map<string, Entry>();
  readonly #ttlMs: number;
  readonly #max: number;

  constructor(ttlMs = RESOLVE_CACHE_MS, max = RESOLVE_CACHE_ENTRIES) {
    this.#ttlMs = ttlMs;
    this.#max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(isolationKey: string, name: string, now: number): (SocksAddress & { readonly kind: 'ip' }) | undefined {
    const k = cacheKey(isolationKey, name);
    const e = this.#entries.get(k);
    if (e === undefined) return undefined;
    if (now >= e.expiresAt) {
      this.#entries.delete(k);
      return undefined;
    }
    return e.address;
  }

  set(isolationKey: string, name: string, address: SocksAddress & { readonly kind: 'ip' }, now: number): void {
    // Answers are rare (one per lookup through Tor): forget the expired ones here, so no name
    // stays in memory past its minute.
    this.sweep(now);
    const k = cacheKey(isolationKey, name);
    this.#entries.delete(k);
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(k, { address, expiresAt: now + this.#ttlMs });
  }

  /** Drops what has expired (on each new answer). */
  sweep(now: number): void {
    for (const [k, e] of this.#entries) if (now >= e.expiresAt) this.#entries.delete(k);
  }
}

function cacheKey(isolationKey: string, name: string): string {
  return `${isolationKey}\u0000${name.toLowerCase().replace(/\.$/, '')}`;
}
