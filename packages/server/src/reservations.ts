// Ports kept for a later Allocate with RESERVATION-TOKEN: the odd port of an EVEN-PORT pair
// (RFC 8656 §7.2), by token, until the token is used or expires. With --workers the Allocate with
// the token may reach another worker (a new TCP connection): that worker claims the reservation
// through a ReservationExchange, the issuing worker lends it (the port leaves its pool) and the
// port goes home when the borrower gives it back (PortPool.foreign).
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

/** A reservation in transit between workers: monotonic clocks differ between processes. */
export interface LentReservation {
  readonly port: number | undefined;
  readonly family: IpFamily;
  readonly username: string;
  readonly remainingMs: number;
}

/** How the workers of one server find each other's reservations (through the primary). */
export interface ReservationExchange {
  /** This worker issued a token (so the primary knows where it lives). */
  issued(tokenKey: string): void;
  /** A token of this worker's is gone (used or expired). */
  withdrawn(tokenKey: string): void;
  /** Asks the worker that issued the token; `done` once, with the reservation or undefined. */
  claim(tokenKey: string, done: (lent: LentReservation | undefined) => void): void;
  /** A port lent by another worker is free again: it goes back to that worker's pool. */
  sendHome(port: number): void;
  /** This worker's side: `lend` answers other workers' claims, `portHome` takes a lent port back. */
  serve(handlers: { lend(tokenKey: string): LentReservation | undefined; portHome(port: number): void }): void;
}

export class Reservations {
  readonly #byToken = new Map<string, Reservation>();
  readonly #perUser = new Map<string, number>();
  readonly #ports: PortPool;
  readonly #random: RandomSource;

  readonly #exchange: ReservationExchange | undefined;

  constructor(ports: PortPool, random: RandomSource = cryptoRandom, exchange?: ReservationExchange) {
    this.#ports = ports;
    this.#random = random;
    this.#exchange = exchange;
  }

  /** Whether a token unknown here may be another worker's. */
  get shared(): boolean {
    return this.#exchange !== undefined;
  }

  /** Fetches another worker's reservation for the token, kept here as this worker's own; then `done`. */
  claim(tokenKey: string, now: () => number, done: () => void): void {
    if (this.#exchange === undefined) return done();
    this.#exchange.claim(tokenKey, (lent) => {
      if (lent !== undefined && !this.#byToken.has(tokenKey)) {
        this.#byToken.set(tokenKey, { port: lent.port, family: lent.family, username: lent.username, expiresAt: now() + lent.remainingMs });
        this.#perUser.set(lent.username, this.countFor(lent.username) + 1);
      }
      done();
    });
  }

  /** Another worker claims a token of ours: it is spent here, its port leaves with it. */
  lend(tokenKey: string, now: number): LentReservation | undefined {
    const res = this.#byToken.get(tokenKey);
    if (res === undefined || res.expiresAt <= now) return undefined;
    this.use(tokenKey);
    return { port: res.port, family: res.family, username: res.username, remainingMs: res.expiresAt - now };
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
    this.#exchange?.withdrawn(tokenKey);
  }

  /** Keeps `port` for an allocation of `family`; returns the RESERVATION-TOKEN that names it. */
  add(port: number, family: IpFamily, username: string, now: number): Buffer {
    const tokenBytes = Buffer.from(this.#random.bytes(8));
    const tokenKey = tokenBytes.toString('hex');
    this.#byToken.set(tokenKey, { port, family, username, expiresAt: now + RESERVATION_MS });
    this.#perUser.set(username, this.countFor(username) + 1);
    this.#exchange?.issued(tokenKey);
    return tokenBytes;
  }

  /** Gives the ports of expired reservations back to the pool. */
  expire(now: number): void {
    for (const [key, res] of this.#byToken) {
      if (res.expiresAt > now) continue;
      this.#byToken.delete(key);
      this.#uncount(res.username);
      this.#exchange?.withdrawn(key);
      if (res.port !== undefined) this.#ports.give(res.port, now);
    }
  }

  #uncount(username: string): void {
    const n = this.countFor(username) - 1;
    if (n <= 0) this.#perUser.delete(username);
    else this.#perUser.set(username, n);
  }
}
