// RESERVATION-TOKEN across the worker processes of one server (--workers): a worker tells the
// primary which tokens it issued; a worker that gets a token it does not know claims it through
// the primary, and the issuing worker lends the reservation (its odd port leaves its pool). The
// port goes home, through the primary, when the borrower frees it. The primary only routes.
import type { LentReservation, ReservationExchange } from './reservations.js';

/** How long a claim waits for the issuing worker's answer before the Allocate gets its 508. */
const CLAIM_TIMEOUT_MS = 1000;

export type ReservationMessage =
  | { readonly op: 'issued' | 'withdrawn'; readonly token: string }
  /** Claimant to primary; primary to the issuer with `from`, the claimant's worker index. */
  | { readonly op: 'claim'; readonly token: string; readonly id: number; readonly from?: number }
  /** Issuer to primary (`to`: the claimant), primary to claimant; no `lent`: unknown or expired. */
  | { readonly op: 'lent'; readonly id: number; readonly to?: number; readonly lent?: LentReservation }
  /** A lent port is free again: to the worker whose range holds it. */
  | { readonly op: 'home'; readonly port: number };

interface Handlers {
  lend(tokenKey: string): LentReservation | undefined;
  portHome(port: number): void;
}

/** A worker's side of the exchange; `send` reaches the primary, `apply` takes what it routes here. */
export class SharedReservations implements ReservationExchange {
  readonly #send: (m: ReservationMessage) => void;
  readonly #pending = new Map<number, (lent: LentReservation | undefined) => void>();
  #handlers: Handlers | undefined;
  #nextId = 1;

  constructor(send: (m: ReservationMessage) => void) {
    this.#send = send;
  }

  issued(tokenKey: string): void {
    this.#send({ op: 'issued', token: tokenKey });
  }

  withdrawn(tokenKey: string): void {
    this.#send({ op: 'withdrawn', token: tokenKey });
  }

  claim(tokenKey: string, done: (lent: LentReservation | undefined) => void): void {
    const id = this.#nextId++;
    const timer = setTimeout(() => this.#answer(id, undefined), CLAIM_TIMEOUT_MS);
    timer.unref();
    this.#pending.set(id, (lent) => {
      clearTimeout(timer);
      done(lent);
    });
    this.#send({ op: 'claim', token: tokenKey, id });
  }

  sendHome(port: number): void {
    this.#send({ op: 'home', port });
  }

  serve(handlers: Handlers): void {
    this.#handlers = handlers;
  }

  /** A message the primary routed to this worker. */
  apply(m: ReservationMessage): void {
    if (m.op === 'claim') {
      const lent = this.#handlers?.lend(m.token);
      this.#send({ op: 'lent', id: m.id, ...(m.from !== undefined ? { to: m.from } : {}), ...(lent ? { lent } : {}) });
    } else if (m.op === 'lent') {
      // An answer after the claim gave up: the port was lent all the same, so it goes home.
      if (!this.#answer(m.id, m.lent) && m.lent?.port !== undefined) this.sendHome(m.lent.port);
    } else if (m.op === 'home') this.#handlers?.portHome(m.port);
  }

  #answer(id: number, lent: LentReservation | undefined): boolean {
    const done = this.#pending.get(id);
    if (done === undefined) return false;
    this.#pending.delete(id);
    done(lent);
    return true;
  }
}
