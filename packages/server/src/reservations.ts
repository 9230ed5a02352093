// Ports kept for a later Allocate with RESERVATION-TOKEN: the odd port of an EVEN-PORT pair
// (RFC 8656 §7.2), by token, until the token is used or expires.
import { randomBytes } from 'node:crypto';
import type { IpFamily } from '@onionturn/protocol';
import type { PortPool } from './port-pool.js';

/** How long the odd port of an EVEN-PORT pair stays reserved (RFC 8656 §7.2: about 30 s). */
const RESERVATION_MS = 30_000;

export interface Reservation {
  readonly port: number | undefined;
  /** The family of the allocation that reserved it: the token stands for an address of that family. */
  readonly family: IpFamily;
  readonly expiresAt: number;
}

export class Reservations {
  readonly #byToken = new Map<string, Reservation>();
  readonly #ports: PortPool;

  constructor(ports: PortPool) {
    this.#ports = ports;
  }

  /** The reservation a token (as hex) names, expired or not. */
  get(tokenKey: string): Reservation | undefined {
    return this.#byToken.get(tokenKey);
  }

  /** The token is spent: its port now belongs to the allocation that used it. */
  use(tokenKey: string): void {
    this.#byToken.delete(tokenKey);
  }

  /** Keeps `port` for an allocation of `family`; returns the RESERVATION-TOKEN that names it. */
  add(port: number, family: IpFamily, now: number): Buffer {
    const tokenBytes = randomBytes(8);
    this.#byToken.set(tokenBytes.toString('hex'), { port, family, expiresAt: now + RESERVATION_MS });
    return tokenBytes;
  }

  /** Gives the ports of expired reservations back to the pool. */
  expire(now: number): void {
    for (const [key, res] of this.#byToken) {
      if (res.expiresAt > now) continue;
      this.#byToken.delete(key);
      if (res.port !== undefined) this.#ports.give(res.port, now);
    }
  }
}
