// Which UDP sources the server remembers, and what a new one is answered. Source addresses are
// spoofable, so a new source keeps no state until it holds an allocation (or one is being made);
// what it is answered before that is rate limited per source address (any port) and in total, so
// the answers (a 401 is five times the size of the request) cannot be aimed at someone else; a
// remembered source without an allocation is forgotten after a while. Pure: the shell passes
// the time and keeps the sockets.
import { SourceBuckets, TokenBucket } from '@onionturn/io';
import { Method, MessageClass, encodeMessageType } from '@onionturn/protocol';
import type { Client } from './allocation.js';

export interface UdpAdmissionRate {
  readonly perSource: number;
  readonly perSourceBurst: number;
  readonly total: number;
  readonly totalBurst: number;
}

/** 100/s (bursts of 400: many clients behind one address) per address, 2,000/s in total. */
export const DEFAULT_UDP_ADMISSION: UdpAdmissionRate = { perSource: 100, perSourceBurst: 400, total: 2000, totalBurst: 4000 };

export interface UdpClientLimits {
  /** Sources remembered at once; beyond, new Allocates are dropped. */
  readonly max: number;
  /** A remembered source with no allocation is forgotten after this long. */
  readonly idleMs: number;
  readonly rate: UdpAdmissionRate;
}

export const DEFAULT_UDP_CLIENT_LIMITS: UdpClientLimits = { max: 50_000, idleMs: 120_000, rate: DEFAULT_UDP_ADMISSION };

const ALLOCATE_REQUEST = encodeMessageType(Method.Allocate, MessageClass.Request);

/** What to do with a datagram from a source not remembered. */
export type Admission = 'answer' | 'rate-limited' | 'full';

interface Entry {
  readonly client: Client;
  seen: number;
}

export class UdpClients {
  /** By listener port, then source address, then source port. */
  readonly #byListener = new Map<number, Map<string, Map<number, Entry>>>();
  readonly #limits: UdpClientLimits;
  readonly #sources: SourceBuckets;
  readonly #total: TokenBucket;
  #count = 0;

  constructor(limits: UdpClientLimits, nowMs: number) {
    this.#limits = limits;
    this.#sources = new SourceBuckets(limits.rate.perSource, limits.rate.perSourceBurst);
    this.#total = new TokenBucket(limits.rate.total, limits.rate.totalBurst, nowMs);
  }

  get size(): number {
    return this.#count;
  }

  /** The remembered client of this source, its last-seen time refreshed. */
  get(listener: number, address: string, port: number, nowMs: number): Client | undefined {
    const e = this.#byListener.get(listener)?.get(address)?.get(port);
    if (e === undefined) return undefined;
    e.seen = nowMs;
    return e.client;
  }

  /** Whether a datagram from a source not remembered is handled (and costs a token). */
  admit(address: string, datagram: Buffer, nowMs: number): Admission {
    if (!this.#sources.get(address, nowMs).take(1, nowMs) || !this.#total.take(1, nowMs)) return 'rate-limited';
    if (this.#count >= this.#limits.max && datagram.length >= 2 && datagram.readUInt16BE(0) === ALLOCATE_REQUEST) return 'full';
    return 'answer';
  }

  /** Keeps the client of a source once it holds an allocation or is making one. */
  remember(listener: number, address: string, port: number, client: Client, nowMs: number): void {
    let byAddr = this.#byListener.get(listener);
    if (!byAddr) this.#byListener.set(listener, (byAddr = new Map()));
    let byPort = byAddr.get(address);
    if (!byPort) byAddr.set(address, (byPort = new Map()));
    if (!byPort.has(port)) this.#count++;
    byPort.set(port, { client, seen: nowMs });
  }

  /** Forgets sources idle for idleMs without an allocation; returns how many. */
  evictIdle(nowMs: number): number {
    let evicted = 0;
    for (const byAddr of this.#byListener.values()) {
      for (const [addr, byPort] of byAddr) {
        for (const [port, e] of byPort) {
          const c = e.client;
          if (c.allocation || c.pendingAllocate || nowMs - e.seen <= this.#limits.idleMs) continue;
          c.closed = true;
          byPort.delete(port);
          evicted++;
        }
        if (byPort.size === 0) byAddr.delete(addr);
      }
    }
    this.#count -= evicted;
    return evicted;
  }
}
