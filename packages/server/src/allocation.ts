// The state one allocation holds: relays, permissions (by peer address), the ip:port peers the
// client has talked to, and channels. Plain mutable records; the core owns the rules.
import type { IpFamily, TransportAddress } from '@onionturn/protocol';
import { TokenBucket, type DelayFeedbackSession, type DelayReport } from '@onionturn/io';
import type { DestinationEntry } from './destination-budgets.js';

/** What the shell gives the core for a client's 5-tuple: how to reach the client. */
export interface ClientLink {
  /** Sends a complete STUN message (response or Data indication). */
  sendMessage(message: Buffer): void;
  /** Sends ChannelData `channel` carrying `data` (the shell adds header and TCP padding). */
  sendChannelData(channel: number, data: Buffer): void;
  /** Closes the client's connection (TCP/TLS); a no-op for UDP. */
  close(): void;
  /** Optional: the client now holds an allocation (the shell may drop its handshake timers). */
  allocated?(): void;
  /** Optional: the client's allocation is gone (expired, refreshed to 0) while its connection stays. */
  released?(): void;
  /**
   * Optional (a worker's plain TCP connections, --workers): this connection, holding nothing,
   * carries a Refresh with worker `worker`'s mobility ticket. 'handed': the shell hands the
   * connection, `frame` first, to that worker, and nothing more happens here; 'busy': it cannot
   * now (508); 'gone': that worker is known to be gone, its allocations with it (437).
   */
  handOff?(worker: number, frame: Buffer): HandOffResult;
  /**
   * Optional (TCP/TLS with a time bound, unless --no-delay-feedback): the client offered the
   * delay extension in an Allocate or take-over Refresh about to succeed; the session that runs
   * it from now on, or undefined when this connection cannot.
   */
  negotiateDelayFeedback?(): DelayFeedbackSession | undefined;
  /** Optional: a report from a negotiated client. */
  delayReport?(report: DelayReport): void;
}

export type HandOffResult = 'handed' | 'busy' | 'gone';

/** A bound relay socket, as the shell gives it to the core. */
export interface RelaySocket {
  send(data: Buffer, offset: number, length: number, port: number, address: string): void;
  /**
   * Optional: the relay talks to this one peer only (connected UDP socket: no per-send address
   * handling, and the kernel drops other sources, which filtering would drop anyway).
   * Called with undefined before a second peer appears.
   */
  setSolePeer?(port: number | undefined, address: string | undefined): void;
  close(): void;
}

export type ClientTransport = 'udp' | 'tcp' | 'tls';

/** One client 5-tuple (a UDP source address on a listener, or one TCP/TLS connection). */
export class Client {
  allocation: Allocation | undefined = undefined;
  /** Transaction id of an Allocate waiting for its relay socket(s). */
  pendingAllocate: Buffer | undefined = undefined;
  closed = false;
  /** The delay extension's session once negotiated (undefined for almost every client: one branch per packet). */
  delayFeedback: DelayFeedbackSession | undefined = undefined;

  constructor(
    readonly transport: ClientTransport,
    readonly remote: TransportAddress,
    readonly link: ClientLink,
    /** Identifies the 5-tuple (nonces are bound to it). */
    readonly key: string,
  ) {}
}

export class Relay {
  socket: RelaySocket | undefined = undefined;
  /** Peers (ip:port) under this relay's permissions; one means the socket may be connected. */
  peerCount = 0;

  constructor(
    readonly allocation: Allocation,
    readonly family: IpFamily,
    /** Where the socket is bound. */
    readonly bindAddress: string,
    readonly port: number,
    /** What XOR-RELAYED-ADDRESS says (external IP for NAT), in canonical text (RFC 5952). */
    readonly external: TransportAddress,
  ) {}
}

export class Channel {
  constructor(
    readonly number: number,
    readonly peer: Peer,
    public expiresAt: number,
  ) {}
}

/** One peer ip:port the client has talked to (or bound a channel to). */
export class Peer {
  channel: Channel | undefined = undefined;
  /**
   * Last time the client sent to this exact ip:port, or bound a channel to it (a ChannelBind names
   * the exact peer, as a first send would): address-and-port-dependent filtering.
   */
  lastSentAt = -Infinity;
  answered = false;
  /**
   * When this peer is the live relay address of an allocation on this server (two users of one
   * server calling each other): that relay, handed datagrams inside the process.
   */
  local: Relay | undefined = undefined;

  constructor(
    readonly permission: Permission,
    readonly port: number,
  ) {}
}

export class Permission {
  readonly peers = new Map<number, Peer>();
  /** Datagrams sent to ports of this address that had not answered (consent, per address). */
  unanswered = 0;
  /** This address's budget over the whole server, found at the first send (destination-budgets.ts). */
  destination: DestinationEntry | undefined = undefined;

  constructor(
    /** The peer address as text, the way relay sockets report sources. */
    readonly address: string,
    /** 4 or 16 address bytes. */
    readonly ip: Buffer,
    readonly relay: Relay,
    public expiresAt: number,
  ) {}
}

export interface AllocationAuth {
  readonly username: string;
  readonly realm: string;
  /** The password that matched at Allocate: later requests must use the same one. */
  readonly password: string;
  /**
   * The integrity key of the password algorithm Allocate used. A later request that switches
   * algorithm (legal, never seen) has its key derived each time: no map of keys per allocation.
   */
  readonly key: Buffer;
  readonly algorithm: number;
  readonly credentialExpiresAt: number | undefined;
}

export class Allocation {
  readonly permissions = new Map<string, Permission>();
  /** Made at the first ChannelBind: many allocations (ICE candidates never chosen) bind none. */
  channels: Map<number, Channel> | undefined = undefined;
  relay4: Relay | undefined = undefined;
  relay6: Relay | undefined = undefined;
  peerCount = 0;
  /** Datagrams sent to peers that had not answered, over all addresses (consent, per allocation). */
  unanswered = 0;
  readonly bandwidth: TokenBucket;
  readonly newPeers: TokenBucket;
  /** UDP only: the success response to Allocate, resent on a retransmission of that request. */
  allocateResponse: Buffer | undefined = undefined;
  deleted = false;
  /** RESERVATION-TOKEN handed out with this allocation (EVEN-PORT with R set). */
  reservationToken: Buffer | undefined = undefined;
  /**
   * RFC 8016: the generation of the newest mobility ticket handed out (only that one works), or
   * undefined when the client did not ask for mobility.
   */
  mobilityGeneration: number | undefined = undefined;
  /**
   * From a take-over until its new connection sends anything: till then the client may not have
   * the newest ticket (see ticketCurrent in mobility.ts).
   */
  movedUnheard = false;

  constructor(
    readonly id: number,
    /** Changes only when a mobility ticket moves the allocation to another 5-tuple. */
    public client: Client,
    readonly auth: AllocationAuth,
    public expiresAt: number,
    nowMs: number,
    bandwidthPerSec: number,
    newPeersPerSec: number,
  ) {
    this.bandwidth = new TokenBucket(bandwidthPerSec, bandwidthPerSec, nowMs);
    this.newPeers = new TokenBucket(newPeersPerSec, newPeersPerSec, nowMs);
  }

  relayFor(family: IpFamily): Relay | undefined {
    return family === 'IPv4' ? this.relay4 : this.relay6;
  }
}
