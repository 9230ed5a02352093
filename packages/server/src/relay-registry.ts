// The relay transport addresses of allocations that exist now. Two users of one server call each
// other through their two allocations, so each one's peer is the other's relay address: one of
// the server's own addresses, which the peer policy denies on every other port (SSH, tor's ports,
// metrics). A peer found here is allowed, and its datagrams are handed over inside the process.
// One process keeps a Map; a multi-process server can back the same interface with shared state.
import { formatIp, parseIp } from '@onionturn/protocol';
import type { Relay } from './allocation.js';

export interface LiveRelays {
  /** A relay socket is bound: its announced address (XOR-RELAYED-ADDRESS) is live. */
  add(relay: Relay): void;
  /** The relay's allocation is gone. */
  remove(relay: Relay): void;
  /** The live relay announced at ip (4 or 16 bytes) : port, if any. */
  find(ip: Buffer, port: number): Relay | undefined;
}

export class RelayRegistry implements LiveRelays {
  readonly #byAddress = new Map<string, Relay>();

  get size(): number {
    return this.#byAddress.size;
  }

  add(relay: Relay): void {
    const ip = parseIp(relay.external.address);
    if (ip) this.#byAddress.set(key(ip, relay.external.port), relay);
  }

  remove(relay: Relay): void {
    const ip = parseIp(relay.external.address);
    if (!ip) return;
    const k = key(ip, relay.external.port);
    if (this.#byAddress.get(k) === relay) this.#byAddress.delete(k);
  }

  find(ip: Buffer, port: number): Relay | undefined {
    return this.#byAddress.get(key(ip, port));
  }
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address: a datagram to it goes there. */
function key(ip: Buffer, port: number): string {
  const mapped = ip.length === 16 && ip.readUInt32BE(0) === 0 && ip.readUInt32BE(4) === 0 && ip.readUInt32BE(8) === 0xffff;
  return `${formatIp(mapped ? ip.subarray(12) : ip)}|${port}`;
}
