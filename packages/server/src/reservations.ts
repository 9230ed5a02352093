// Ports kept for a later Allocate with RESERVATION-TOKEN: the odd port of an EVEN-PORT pair
// (RFC 8656 §7.2), by token, until the token is used or expires.
import { cryptoRandom, type RandomSource } from '@onionturn/credentials';
import type { IpFamily } from '@onionturn/protocol';
import type { PortPool } from './port-pool.js';

/** How long the odd port of an EVEN-PORT pair stays reserved (RFC 8656 §7.2: about 30 s). */
const RESERVATION_MS = 30_000;

export interface Reservation {
  readonly port: number | undefined;
  /** The family of the allocation that reserved it: the token stands for an address of that family. */
  readonly family: IpFamily;
  readonly expiresAt: number;
  /** Who reserved it: a held port counts against that user's allocation quota. */
  readonly username: string;
}

export class Reservations {
  readonly #byToken = new Map<string, Reservation>();
  readonly #perUser = new Map<string, number>();
  readonly #ports: PortPool;
  readonly #random: RandomSource;

  constructor(ports: PortPool, random: RandomSource = cryptoRandom) {
    this.#ports = ports;
    this.#random = random;
  }

  /** The reservation a token (as hex) names, expired or not. */
  get(tokenKey: string): Reservation | undefined {
    return this.#byToken.get(tokenKey);
  }

  /** Ports this user holds in reservations (so EVEN-PORT in a loop cannot hoard the range). */
  countFor(username: string): number {
    return this.#perUser.get(username) ?? 0;
  }

  /** The token is spent: its port now belongs to the allocation that used it. */
  use(tokenKey: string): void {
    const res = this.#byToken.get(tokenKey);
    if (res === undefined) return;
    this.#byToken.delete(tokenKey);
    this.#uncount(res.username);
  }

  /** Keeps `port` for an allocation of `family`; returns the RESERVATION-TOKEN that names it. */
  add(port: number, family: IpFamily, username: string, now: number): Buffer {
    const tokenBytes = Buffer.from(this.#random.bytes(8));
    this.#byToken.set(tokenBytes.toString('hex'), { port, family, username, expiresAt: now + RESERVATION_MS });
    this.#perUser.set(username, this.countFor(username) + 1);
    return tokenBytes;
  }

  /** Gives the ports of expired reservations back to the pool. */
  expire(now: number): void {
    for (const [key, res] of this.#byToken) {
      if (res.expiresAt > now) continue;
      this.#byToken.delete(key);
      this.#uncount(res.username);
      if (res.port !== undefined) this.#ports.give(res.port, now);
    }
  }

  #uncount(username: string): void {
    const n = this.countFor(username) - 1;
    if (n <= 0) this.#perUser.delete(username);
    else this.#perUser.set(username, n);
  }
}
