// The relay transport addresses of allocations that exist now. Two users of one server call each
// other through their two allocations, so each one's peer is the other's relay address: one of
// the server's own addresses, which the peer policy denies on every other port (SSH, tor's ports,
// metrics). A peer found here is allowed, and its datagrams are handed over inside the process.
// One process keeps a Map; a multi-process server can back the same interface with shared state.
import { formatIp, parseIp } from '@onionturn/protocol';
import type { Relay } from './allocation.js';
import { lastTextMemo } from './last-text-memo.js';
import { canonical } from './peer-policy.js';

export interface LiveRelays {
  /** A relay socket is bound: its announced address (XOR-RELAYED-ADDRESS) is live. */
  add(relay: Relay): void;
  /** The relay's allocation is gone. */
  remove(relay: Relay): void;
  /** The live relay of this process announced at ip (4 or 16 bytes) : port, if any. */
  find(ip: Buffer, port: number): Relay | undefined;
  /** Whether ip:port is a live relay address of this server, in this process or another worker. */
  has(ip: Buffer, port: number): boolean;
  /**
   * Optional: the relay's socket is bound and its allocation about to be answered; `done` once
   * every process that must know the address does (a client may name it as a peer at once).
   */
  prepare?(relay: Relay, done: () => void): void;
}

export class RelayRegistry implements LiveRelays {
  readonly #byAddress = new Map<string, Relay>();

  get size(): number {
    return this.#byAddress.size;
  }

  add(relay: Relay): void {
    const k = relayKey(relay);
    if (k !== undefined) this.#byAddress.set(k, relay);
  }

  remove(relay: Relay): void {
    const k = relayKey(relay);
    if (k !== undefined && this.#byAddress.get(k) === relay) this.#byAddress.delete(k);
  }

  find(ip: Buffer, port: number): Relay | undefined {
    return this.#byAddress.get(key(ip, port));
  }

  has(ip: Buffer, port: number): boolean {
    return this.#byAddress.has(key(ip, port));
  }
}

/**
 * What workers tell each other: relay addresses that came ('+KEY') or went ('-KEY'), KEY being
 * "ADDRESS|PORT" (canonical), in the order they did. One message carries all the changes of one
 * event-loop turn: with many allocations made at once, one message (and one ack) for many adds
 * rather than a message, a broadcast and an ack each.
 */
export interface RelayBatch {
  readonly ops: readonly string[];
  /** Set when an allocation waits for the primary's word that every other worker has the batch. */
  readonly ack?: number;
}

/** How long an allocation's answer waits for the other workers to know its relay, at most. */
const PREPARE_TIMEOUT_MS = 1000;

/** Runs `flush` once the current event-loop turn's I/O is handled (setImmediate). */
export type FlushScheduler = (flush: () => void) => void;

/**
 * The live relays of a server made of worker processes: this worker's own (handed datagrams in
 * the process) and the others' (reachable through the kernel), kept in step by messages. The
 * changes of the own set are gathered and passed to `announce` once per turn; `apply` takes the
 * other workers' batches.
 */
export class SharedRelays implements LiveRelays {
  readonly #local = new RelayRegistry();
  readonly #remote = new Set<string>();
  readonly #announce: (batch: RelayBatch) => void;
  readonly #schedule: FlushScheduler;
  /** Relays announced by prepare(), so add() does not announce them again. */
  readonly #prepared = new Set<string>();
  readonly #waiting = new Map<number, () => void>();
  #nextAck = 1;
  /** This turn's changes and the allocations that wait for them. */
  #ops: string[] = [];
  #done: (() => void)[] = [];
  #scheduled = false;

  constructor(announce: (batch: RelayBatch) => void, schedule: FlushScheduler = (flush) => setImmediate(flush)) {
    this.#announce = announce;
    this.#schedule = schedule;
  }

  prepare(relay: Relay, done: () => void): void {
    const k = relayKey(relay);
    if (k === undefined) return done();
    this.#prepared.add(k);
    this.#done.push(done);
    this.#push(`+${k}`);
  }

  /** The primary has passed an announced batch on to every other worker. */
  acked(ack: number): void {
    const done = this.#waiting.get(ack);
    this.#waiting.delete(ack);
    done?.();
  }

  add(relay: Relay): void {
    this.#local.add(relay);
    const k = relayKey(relay);
    if (k === undefined) return;
    if (this.#prepared.delete(k)) return;
    this.#push(`+${k}`);
  }

  remove(relay: Relay): void {
    this.#local.remove(relay);
    const k = relayKey(relay);
    if (k === undefined) return;
    this.#prepared.delete(k);
    this.#push(`-${k}`);
  }

  find(ip: Buffer, port: number): Relay | undefined {
    return this.#local.find(ip, port);
  }

  has(ip: Buffer, port: number): boolean {
    return this.#local.has(ip, port) || this.#remote.has(key(ip, port));
  }

  /** Another worker's changes, in order. */
  apply(batch: RelayBatch): void {
    for (const op of batch.ops) {
      if (op.startsWith('+')) this.#remote.add(op.slice(1));
      else if (op.startsWith('-')) this.#remote.delete(op.slice(1));
    }
  }

  #push(op: string): void {
    this.#ops.push(op);
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#schedule(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const ops = this.#ops;
    const waiting = this.#done;
    this.#ops = [];
    this.#done = [];
    if (ops.length === 0) return;
    if (waiting.length === 0) return this.#announce({ ops });
    const ack = this.#nextAck++;
    const timer = setTimeout(() => this.acked(ack), PREPARE_TIMEOUT_MS);
    timer.unref();
    this.#waiting.set(ack, () => {
      clearTimeout(timer);
      for (const done of waiting) done();
    });
    this.#announce({ ops, ack });
  }
}

/** The address part of a relay's key, parsed once per announced text (the same for every relay of a family). */
const announcedKey = lastTextMemo((text: string): string | undefined => {
  const ip = parseIp(text);
  return ip ? addressKey(ip) : undefined;
});

function relayKey(relay: Relay): string | undefined {
  const address = announcedKey(relay.external.address);
  return address === undefined ? undefined : `${address}|${relay.external.port}`;
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address, as the peer policy reads it. */
function addressKey(ip: Buffer): string {
  return formatIp(canonical(ip));
}

function key(ip: Buffer, port: number): string {
  return `${addressKey(ip)}|${port}`;
}
