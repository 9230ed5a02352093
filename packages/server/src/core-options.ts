// What TurnCore is configured with, and the interfaces through which the shell binds relays and
// hears lifecycle events.
import type { TicketIssuer } from './mobility-tickets.js';
import type { Relay, RelaySocket } from './allocation.js';
import type { RandomSource } from '@onionturn/credentials';
import type { CredentialLookup } from './auth.js';
import type { Lifetimes, Limits } from './limits.js';
import type { PeerPolicy } from './peer-policy.js';
import type { PortPool } from './port-pool.js';
import type { LiveRelays } from './relay-registry.js';
import type { ReservationExchange } from './reservations.js';

export type Filtering = 'address-and-port' | 'address';

/** Where relays of one family are bound and what address they are announced as. */
export interface RelayAddress {
  readonly bind: string;
  readonly external: string;
}

/** Binds a relay socket; calls done(socket) or done(undefined) when the port is taken. */
export interface RelayBinder {
  bind(relay: Relay, done: (socket: RelaySocket | undefined) => void): void;
}

/**
 * Lifecycle events for logs (never per packet). Fields named username/client/peer are sensitive.
 * Events any client can cause once per request (already counted in metrics) come at 'debug'.
 */
export interface CoreEvents {
  event(name: string, fields: Readonly<Record<string, unknown>>, level?: 'info' | 'debug'): void;
}

export interface CoreOptions {
  readonly realm: string;
  readonly lookup: CredentialLookup;
  readonly policy: PeerPolicy;
  readonly ports: PortPool;
  readonly binder: RelayBinder;
  readonly relay4?: RelayAddress;
  readonly relay6?: RelayAddress;
  readonly filtering?: Filtering;
  /** Default true: an allocation lives no longer than its REST credential (see credentialBound). */
  readonly strictExpiry?: boolean;
  readonly software?: string;
  readonly lifetimes?: Partial<Lifetimes>;
  readonly limits?: Partial<Limits>;
  /**
   * Monotonic milliseconds (default: performance.timeOrigin + performance.now()): lifetimes,
   * nonces, rates. A step of the wall clock (NTP, a resumed VM) must not end or stretch calls.
   */
  readonly now?: () => number;
  /**
   * Wall-clock milliseconds since the epoch (default Date.now; `now` when only that is given):
   * REST credentials only, whose expiry is a wall-clock time by design.
   */
  readonly wallNow?: () => number;
  readonly events?: CoreEvents;
  readonly nonceSecret?: Buffer;
  /** The nonce clock's origin (default random); workers share it with the secret, so any takes another's nonce. */
  readonly nonceOrigin?: number;
  /**
   * Randomness for Data indication transaction ids, reservation tokens and the nonce key (the
   * relay ports come from the PortPool's own): the OS CSPRNG unless a test makes runs reproducible.
   */
  readonly random?: RandomSource;
  /** Live relay addresses (default: this process's own); a multi-process server shares them. */
  readonly relays?: LiveRelays;
  /** Reservations of other worker processes (--workers): RESERVATION-TOKEN across workers. */
  readonly reservationExchange?: ReservationExchange;
  /**
   * 'rfc5766' (default) also accepts channels 0x5000-0x7FFF, which RFC 5766 clients (coturn's
   * turnutils_uclient, older SDKs) still choose; 'rfc8656' allows only 0x4000-0x4FFF.
   */
  readonly channelRange?: ChannelRange;
  /**
   * RFC 8016 mobility (default true): an Allocate with an empty MOBILITY-TICKET gets a ticket,
   * and a Refresh showing it from another 5-tuple with the same username takes the allocation
   * over. false: such an Allocate gets 405 (Mobility Forbidden).
   */
  readonly mobility?: boolean;
  /** The 32-byte ticket key (default: from `random`, made at start; with --workers the cluster's). */
  readonly mobilityKey?: Buffer;
  /** Which worker issues this core's tickets, and which life of it (default worker 0, incarnation 0). */
  readonly ticketIssuer?: TicketIssuer;
}

export type ChannelRange = 'rfc8656' | 'rfc5766';
