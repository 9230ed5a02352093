// The sans-IO TURN server (RFC 8656 over RFC 8489): client messages, peer datagrams and timer
// ticks go in; responses, relayed data and relay-socket requests go out through the ClientLink,
// RelaySocket and RelayBinder interfaces the shell supplies. Time comes from an injected clock.
// This file holds the inputs, the relay hot path both ways, the timers and the dispatch of
// requests; the method handlers, the credential check and the replies live in files of their own.
import {
  AttributeType,
  ErrorCode,
  HEADER_LENGTH,
  MessageClass,
  Method,
  dataIndicationLength,
  decodeMessage,
  getAttribute,
  NonceIssuer,
  readAttribute,
  verifyFingerprint,
  WireKind,
  wireKindOf,
  writeDataIndication,
  type StunMessage,
} from '@onionturn/protocol';
import { onAllocate, type AllocateContext } from './allocate.js';
import { droppablePayload, onDelayReport } from './delay-feedback.js';
import { monotonicNow } from './monotonic.js';
import { Peer, type Allocation, type Client, type Permission, type Relay } from './allocation.js';
import { AllocationTable } from './allocation-table.js';
import type { CredentialLookup } from './auth.js';
import { authenticate, type AuthContext } from './authenticate.js';
import type { CoreOptions, Filtering } from './core-options.js';
import { CHANNEL_REBIND_GUARD_MS, MOBILITY_GRACE_MS, DEFAULT_LIFETIMES, DEFAULT_LIMITS, type Lifetimes, type Limits } from './limits.js';
import type { PeerPolicy } from './peer-policy.js';
import { DestinationBudgets } from './destination-budgets.js';
import { onChannelBind, onCreatePermission, type PermissionContext } from './permissions.js';
import { onRefresh, type RefreshContext } from './refresh.js';
import { handedOff } from './mobility.js';
import { MobilityTickets } from './mobility-tickets.js';
import { Replies, type Reply } from './replies.js';
import { RelayRegistry, type LiveRelays } from './relay-registry.js';
import { Reservations } from './reservations.js';
import { cryptoRandom } from '@onionturn/credentials';
import { TokenBucket } from '@onionturn/io';
import { CoreStats } from './stats.js';

/** The core's state as the method handlers see it; each handler's context names the part it uses. */
type HandlerContext = AuthContext & AllocateContext & RefreshContext & PermissionContext;

export class TurnCore {
  readonly stats = new CoreStats();
  readonly #life: Lifetimes;
  readonly #limits: Limits;
  readonly #now: () => number;
  readonly #wallNow: () => number;
  readonly #filtering: Filtering;
  readonly #table: AllocationTable;
  readonly #reservations: Reservations;
  readonly #replies: Replies;
  readonly #ctx: HandlerContext;
  readonly #total: TokenBucket;
  readonly #destinations: DestinationBudgets;
  readonly #relays: LiveRelays;
  #policy: PeerPolicy;
  #lookup: CredentialLookup;
  readonly #tid: Buffer;

  constructor(options: CoreOptions) {
    this.#life = { ...DEFAULT_LIFETIMES, ...options.lifetimes };
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#now = options.now ?? monotonicNow;
    this.#wallNow = options.wallNow ?? options.now ?? Date.now;
    const random = options.random ?? cryptoRandom;
    this.#tid = Buffer.from(random.bytes(12));
    const nonces = new NonceIssuer(
      this.#life.nonceSec * 1000,
      options.nonceSecret ?? Buffer.from(random.bytes(32)),
      options.nonceOrigin ?? -random.int(0, 2 ** 40),
    );
    this.#filtering = options.filtering ?? 'address-and-port';
    this.#policy = options.policy;
    this.#lookup = options.lookup;
    const bw = this.#limits.bandwidthTotal;
    this.#total = new TokenBucket(bw, bw, this.#now());
    this.#destinations = new DestinationBudgets(
      {
        bytesPerSecond: this.#limits.bandwidthPerDestination,
        packetsPerSecond: this.#limits.packetsPerDestination,
        maxDestinations: this.#limits.destinations,
      },
      this.#now(),
    );
    this.#relays = options.relays ?? new RelayRegistry();
    this.#table = new AllocationTable(options.ports, this.stats, options.events, this.#now, this.#relays);
    const exchange = options.reservationExchange;
    this.#reservations = new Reservations(options.ports, random, exchange);
    if (exchange) {
      const ports = options.ports;
      ports.foreign = (port) => exchange.sendHome(port);
      exchange.serve({ lend: (tokenKey) => this.#reservations.lend(tokenKey, this.#now()), portHome: (port) => ports.give(port, this.#now()) });
    }
    this.#replies = new Replies(this.stats, options.realm, options.software, nonces, this.#now);
    const tickets = options.mobility === false ? undefined : new MobilityTickets(options.mobilityKey ?? Buffer.from(random.bytes(32)), options.ticketIssuer);
    // Made once: the handlers reach the core's state through this, never per packet.
    this.#ctx = {
      options,
      life: this.#life,
      limits: this.#limits,
      stats: this.stats,
      replies: this.#replies,
      nonces,
      table: this.#table,
      reservations: this.#reservations,
      relays: this.#relays,
      tickets,
      now: this.#now,
      wallNow: this.#wallNow,
      lookup: (username, realm, nowMs) => this.#lookup(username, realm, nowMs),
      peerAllowed: (ip, port) => this.#peerAllowed(ip, port),
      newPeer: (alloc, perm, port, now) => this.#newPeer(alloc, perm, port, now),
    };
  }

  get allocationCount(): number {
    return this.#table.size;
  }

  get allocations(): ReadonlySet<Allocation> {
    return this.#table.all;
  }

  /**
   * SIGHUP: new policy and credentials apply to new requests. Allocations stay, except those of
   * a static user that was removed or given a new password: a revoked user must not keep relaying
   * until the allocation expires. REST credentials end by themselves (strict expiry), and a
   * rotated-out secret keeps the allocations made with it, as rotation should.
   */
  reload(policy: PeerPolicy, lookup: CredentialLookup): void {
    this.#policy = policy;
    this.#lookup = lookup;
    const now = this.#wallNow();
    for (const alloc of [...this.#table.all]) {
      const auth = alloc.auth;
      if (auth.credentialExpiresAt !== undefined) continue;
      const cred = lookup(auth.username, auth.realm, now);
      if (cred === undefined || !cred.passwords.includes(auth.password)) this.#table.delete(alloc, 'credentials-revoked');
    }
  }

  // ---------------------------------------------------------------- inputs

  /** A UDP datagram from a client: STUN or ChannelData; anything else is dropped. */
  handleClientDatagram(client: Client, data: Buffer): void {
    const first = data[0];
    if (first === undefined) return;
    const kind = wireKindOf(first);
    if (kind === WireKind.Stun) this.handleStun(client, data);
    else if (kind === WireKind.ChannelData) this.handleChannelData(client, data);
    else this.stats.malformed++;
  }

  /** ChannelData from the client (a framer frame or a datagram): the hot path to a peer. */
  handleChannelData(client: Client, frame: Buffer): void {
    const alloc = client.allocation;
    if (alloc === undefined || frame.length < 4) {
      // ChannelData before any allocation: not a TURN client (e.g. "GET " parses as a channel).
      this.stats.malformed++;
      if (client.transport !== 'udp' && client.pendingAllocate === undefined) client.link.close();
      return;
    }
    if (alloc.movedUnheard) alloc.movedUnheard = false;
    const len = frame.readUInt16BE(2);
    if (frame.length < 4 + len) {
      this.stats.malformed++;
      return;
    }
    const channel = alloc.channels?.get(frame.readUInt16BE(0));
    const now = this.#now();
    if (channel === undefined || channel.expiresAt <= now || channel.peer.permission.expiresAt <= now) {
      this.stats.droppedNoPermission++;
      return;
    }
    const df = client.delayFeedback;
    if (df !== undefined && df.late() && droppablePayload(frame, 4, len)) {
      this.stats.droppedStaleArrival++;
      return;
    }
    this.#toPeer(alloc, channel.peer, frame, 4, len, now);
  }

  /** A complete STUN message from the client. */
  handleStun(client: Client, raw: Buffer): void {
    const decoded = decodeMessage(raw);
    if (!decoded.ok) {
      this.stats.malformed++;
      this.#replies.badRequestFromHeader(client, raw);
      return;
    }
    const msg = decoded.value;
    // Anything from a connection that took an allocation over: it has the answer (mobility.ts).
    const held = client.allocation;
    if (held !== undefined && held.movedUnheard) held.movedUnheard = false;
    if (msg.classic) {
      // RFC 3489 messages (no magic cookie) cannot carry TURN; ignore them.
      this.stats.malformed++;
      return;
    }
    if (msg.fingerprintOffset >= 0 && verifyFingerprint(msg) !== 'ok') {
      // RFC 8489 §7.3: a wrong FINGERPRINT means this is not STUN (or was damaged): drop it.
      this.stats.malformed++;
      return;
    }
    if (msg.messageClass === MessageClass.Indication) {
      // RFC 8489 §7.3.2: an indication with unknown comprehension-required attributes is
      // discarded; so is a Send asking for DF, which Node cannot set (RFC 8656 §11.2).
      // A Binding indication is a keepalive, ignored (RFC 8656 §12); on a connection that
      // negotiated the delay extension it carries the client's reports.
      if (msg.method === Method.Binding) {
        if (client.delayFeedback !== undefined) onDelayReport(client, msg);
        return;
      }
      if (msg.method !== Method.Send || msg.unknownRequired.length > 0 || getAttribute(msg, AttributeType.DontFragment)) return;
      this.#onSend(client, msg);
      return;
    }
    if (msg.messageClass !== MessageClass.Request) return;
    const r: Reply = { client, msg, auth: undefined };
    if (msg.method === Method.Binding) {
      if (msg.unknownRequired.length > 0) return this.#replies.unknownAttributes(r);
      return this.#replies.success(r, (b) => b.add(AttributeType.XorMappedAddress, { kind: 'address', address: client.remote }));
    }
    const known =
      msg.method === Method.Allocate || msg.method === Method.Refresh || msg.method === Method.CreatePermission || msg.method === Method.ChannelBind;
    if (!known) return this.#replies.error(r, ErrorCode.BadRequest);
    if (msg.method === Method.Refresh && handedOff(this.#ctx, r, raw)) return;
    const auth = authenticate(this.#ctx, r);
    if (auth === undefined) return;
    r.auth = auth;
    // Node cannot set DF on relayed datagrams, so per RFC 8656 §7.2 an Allocate asking for it is
    // treated as carrying an unknown comprehension-required attribute (the client retries without).
    if (msg.method === Method.Allocate && getAttribute(msg, AttributeType.DontFragment)) {
      return this.#replies.unknownAttributes(r, [...msg.unknownRequired, AttributeType.DontFragment]);
    }
    if (msg.unknownRequired.length > 0) return this.#replies.unknownAttributes(r);
    switch (msg.method) {
      case Method.Allocate:
        return onAllocate(this.#ctx, r);
      case Method.Refresh:
        return onRefresh(this.#ctx, r);
      case Method.CreatePermission:
        return onCreatePermission(this.#ctx, r);
      default:
        return onChannelBind(this.#ctx, r);
    }
  }

  /** A datagram that arrived on a relay socket from a peer: the hot path to the client. */
  handlePeerDatagram(relay: Relay, data: Buffer, address: string, port: number): void {
    const alloc = relay.allocation;
    if (alloc.deleted) return;
    if (alloc.client.closed) {
      // A mobile allocation between connections: dropped, not queued (stale when it could be sent).
      this.stats.droppedDetached++;
      return;
    }
    const now = this.#now();
    const perm = alloc.permissions.get(address);
    if (perm === undefined || perm.expiresAt <= now || perm.relay !== relay) {
      this.stats.droppedFiltered++;
      return;
    }
    const peer = perm.peers.get(port);
    if (peer !== undefined) {
      if (this.#filtering === 'address-and-port' && now - peer.lastSentAt > this.#life.permissionSec * 1000) {
        this.stats.droppedFiltered++;
        return;
      }
      peer.answered = true;
    } else if (this.#filtering === 'address-and-port') {
      this.stats.droppedFiltered++;
      return;
    } else if (!this.#peerAllowed(perm.ip, port)) {
      // --filtering address: a port the client never used is delivered without keeping state for
      // it (a peer spraying ports spends none of the client's peer quota), but the policy's port
      // rules (reject *:25) still hold.
      this.stats.deniedPeers++;
      return;
    }
    const len = data.length;
    const ch = peer?.channel;
    const viaChannel = ch !== undefined && ch.expiresAt > now;
    // A STUN length is 16 bits: an IPv6 peer's datagram of 65505+ bytes fits no Data indication.
    const size = viaChannel ? 0 : dataIndicationLength(perm.ip.length, len);
    if (size - HEADER_LENGTH > 0xffff) {
      this.stats.droppedOversize++;
      return;
    }
    if (!alloc.bandwidth.take(len, now) || !this.#total.take(len, now)) {
      this.stats.droppedBandwidth++;
      return;
    }
    this.stats.packetsToClient++;
    this.stats.bytesToClient += len;
    if (viaChannel) {
      alloc.client.link.sendChannelData(ch.number, data);
      return;
    }
    const out = Buffer.allocUnsafe(size);
    this.#bumpTid();
    writeDataIndication(out, this.#tid, perm.ip, port, data);
    alloc.client.link.sendMessage(out);
  }

  /**
   * The client's TCP/TLS connection closed (or a UDP client is forgotten): free at once, unless
   * the allocation has a mobility ticket: then it waits MOBILITY_GRACE_MS (at most its lifetime)
   * for a Refresh with the ticket on a new connection (RFC 8016).
   */
  clientClosed(client: Client): void {
    client.closed = true;
    const alloc = client.allocation;
    if (!alloc) return;
    if (alloc.mobilityGeneration === undefined) return this.#table.delete(alloc, 'client-closed');
    alloc.expiresAt = Math.min(alloc.expiresAt, this.#now() + MOBILITY_GRACE_MS);
    this.#ctx.options.events?.event('allocation-detached', { allocation: alloc.id }, 'debug');
  }

  /** Expires allocations, permissions and channels; call about once a second. */
  tick(): void {
    const now = this.#now();
    this.#reservations.expire(now);
    this.#destinations.tick(now);
    for (const alloc of this.#table.all) {
      if (alloc.expiresAt <= now) {
        this.#table.delete(alloc, 'expired');
        continue;
      }
      const channels = alloc.channels;
      if (channels !== undefined) {
        for (const [number, ch] of channels) {
          if (ch.expiresAt + CHANNEL_REBIND_GUARD_MS <= now) {
            channels.delete(number);
            ch.peer.channel = undefined;
          }
        }
      }
      // Most held allocations have no permission at a given moment (an ICE candidate never
      // chosen): no iterator for them, once a second each.
      if (alloc.permissions.size === 0) continue;
      for (const [address, perm] of alloc.permissions) {
        if (perm.expiresAt > now) continue;
        let held = false;
        for (const peer of perm.peers.values()) if (peer.channel) held = true;
        if (held) continue;
        alloc.permissions.delete(address);
        alloc.peerCount -= perm.peers.size;
        const relay = perm.relay;
        const before = relay.peerCount;
        relay.peerCount -= perm.peers.size;
        if (this.#filtering === 'address-and-port' && relay.peerCount !== before) {
          const sole = relay.peerCount === 1 ? this.#solePeer(alloc, relay) : undefined;
          relay.socket?.setSolePeer?.(sole?.port, sole?.permission.address);
        }
      }
    }
  }

  /** Deletes every allocation (shutdown). */
  closeAll(): void {
    for (const alloc of [...this.#table.all]) this.#table.delete(alloc, 'shutdown');
  }

  // ---------------------------------------------------------------- relay path

  #toPeer(alloc: Allocation, peer: Peer, buf: Buffer, offset: number, len: number, now: number): void {
    if (!peer.answered) {
      const perm = peer.permission;
      if (perm.unanswered >= this.#limits.unansweredSends || alloc.unanswered >= this.#limits.unansweredSendsPerAllocation) {
        this.stats.droppedConsent++;
        return;
      }
      perm.unanswered++;
      alloc.unanswered++;
    }
    const perm = peer.permission;
    // The destination's budget first: a flood it drops spends none of the sender's bandwidth
    // nor the server's total, which other users share.
    if (this.#destinations.enabled && peer.local === undefined) {
      let dest = perm.destination;
      if (dest === undefined || dest.evicted) dest = perm.destination = this.#destinations.entry(perm.ip, now);
      if (!dest.take(len, now)) {
        this.stats.droppedDestination++;
        return;
      }
    }
    if (!alloc.bandwidth.take(len, now) || !this.#total.take(len, now)) {
      this.stats.droppedBandwidth++;
      return;
    }
    peer.lastSentAt = now;
    const socket = perm.relay.socket;
    if (socket === undefined) return;
    this.stats.packetsToPeer++;
    this.stats.bytesToPeer += len;
    if (peer.local !== undefined) this.#toLocalRelay(peer, buf.subarray(offset, offset + len));
    else socket.send(buf, offset, len, peer.port, perm.address);
  }

  /**
   * Relay to relay on this server: the datagram arrives at the other allocation as if from this
   * one's relay address, without a trip through the kernel (which, behind NAT, could not even
   * reach the announced address).
   */
  #toLocalRelay(peer: Peer, data: Buffer): void {
    let target = peer.local as Relay;
    if (target.allocation.deleted) {
      // That allocation ended; its port may serve a new one by now, or nothing: never the kernel.
      const next = this.#relays.find(peer.permission.ip, peer.port);
      if (next === undefined) {
        this.stats.deniedPeers++;
        return;
      }
      peer.local = target = next;
    }
    const from = peer.permission.relay.external;
    this.handlePeerDatagram(target, data, from.address, from.port);
  }

  /** The policy, except that live relay addresses of this server are reachable peers. */
  #peerAllowed(ip: Buffer, port: number): boolean {
    return this.#relays.has(ip, port) || this.#policy.allows(ip, port);
  }

  /** The one peer left under a relay (after others expired). */
  #solePeer(alloc: Allocation, relay: Relay): Peer | undefined {
    for (const perm of alloc.permissions.values()) {
      if (perm.relay !== relay) continue;
      for (const peer of perm.peers.values()) return peer;
    }
    return undefined;
  }

  #bumpTid(): void {
    // A counter in the last 4 bytes of a random id: unique per indication without randomBytes.
    const tid = this.#tid;
    tid.writeUInt32BE((tid.readUInt32BE(8) + 1) >>> 0, 8);
  }

  /** Every peer is made here, so the policy's port rules hold for Send and inbound data too. */
  #newPeer(alloc: Allocation, perm: Permission, port: number, now: number): Peer | undefined {
    // A permission is per address; the policy may still deny some ports of it (reject *:25).
    // A relay of this process is handed datagrams inside it; another worker's, through the kernel.
    const local = this.#relays.find(perm.ip, port);
    if (local === undefined && !this.#relays.has(perm.ip, port) && !this.#policy.allows(perm.ip, port)) {
      this.stats.deniedPeers++;
      return undefined;
    }
    if (alloc.peerCount >= this.#limits.peersPerAllocation) {
      this.stats.countQuota('peers');
      return undefined;
    }
    if (!alloc.newPeers.take(1, now)) {
      this.stats.countQuota('new-peer-rate');
      return undefined;
    }
    const peer = new Peer(perm, port);
    peer.local = local;
    perm.peers.set(port, peer);
    alloc.peerCount++;
    const relay = perm.relay;
    relay.peerCount++;
    // Only address-and-port filtering lets the kernel filter for us: with one peer, nothing from
    // elsewhere may be delivered anyway. A second peer disconnects before it is ever sent to.
    if (this.#filtering === 'address-and-port') {
      if (relay.peerCount === 1) relay.socket?.setSolePeer?.(port, perm.address);
      else if (relay.peerCount === 2) relay.socket?.setSolePeer?.(undefined, undefined);
    }
    return peer;
  }

  #onSend(client: Client, msg: StunMessage): void {
    const alloc = client.allocation;
    if (alloc === undefined) return;
    const peerAttr = readAttribute(msg, AttributeType.XorPeerAddress);
    const dataAttr = getAttribute(msg, AttributeType.Data);
    if (!peerAttr?.ok || peerAttr.value.kind !== 'address' || peerAttr.value.address.port === 0 || dataAttr === undefined) {
      this.stats.malformed++;
      return;
    }
    const addr = peerAttr.value.address;
    const now = this.#now();
    const perm = alloc.permissions.get(addr.address);
    if (perm === undefined || perm.expiresAt <= now) {
      this.stats.droppedNoPermission++;
      return;
    }
    const peer = perm.peers.get(addr.port) ?? this.#newPeer(alloc, perm, addr.port, now);
    if (peer === undefined) return;
    const v = dataAttr.value;
    const df = client.delayFeedback;
    if (df !== undefined && df.late() && droppablePayload(v, 0, v.length)) {
      this.stats.droppedStaleArrival++;
      return;
    }
    this.#toPeer(alloc, peer, msg.raw, v.byteOffset - msg.raw.byteOffset, v.length, now);
  }
}
