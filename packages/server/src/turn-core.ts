// The sans-IO TURN server (RFC 8656 over RFC 8489): client messages, peer datagrams and timer
// ticks go in; responses, relayed data and relay-socket requests go out through the ClientLink,
// RelaySocket and RelayBinder interfaces the shell supplies. Time comes from an injected clock.
import { randomBytes } from 'node:crypto';
import {
  AttributeType,
  ErrorCode,
  HEADER_LENGTH,
  MAGIC_COOKIE,
  MessageBuilder,
  MessageClass,
  Method,
  PasswordAlgorithm,
  TransportProtocol,
  dataIndicationLength,
  decodeMessage,
  errorCodeValue,
  formatIp,
  getAttribute,
  isValidChannelNumber,
  longTermKey,
  methodOf,
  parseIp,
  readAttribute,
  readAttributes,
  verifyFingerprint,
  verifyIntegrity,
  writeDataIndication,
  type IpFamily,
  type StunMessage,
  type TransportAddress,
} from '@onionturn/protocol';
import { NonceIssuer } from '@onionturn/credentials';
import { Allocation, Channel, Peer, Permission, Relay, type Client, type RelaySocket } from './allocation.js';
import type { Credential, CredentialLookup } from './auth.js';
import { CHANNEL_REBIND_GUARD_MS, DEFAULT_LIFETIMES, DEFAULT_LIMITS, type Lifetimes, type Limits } from './limits.js';
import type { PeerPolicy } from './peer-policy.js';
import type { PortPool } from './port-pool.js';
import { TokenBucket } from './rate-limit.js';
import { CoreStats } from './stats.js';

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
  readonly strictExpiry?: boolean;
  readonly software?: string;
  readonly lifetimes?: Partial<Lifetimes>;
  readonly limits?: Partial<Limits>;
  readonly now?: () => number;
  readonly events?: CoreEvents;
  readonly nonceSecret?: Buffer;
  /**
   * 'rfc5766' (default) also accepts channels 0x5000-0x7FFF, which RFC 5766 clients (coturn's
   * turnutils_uclient, older SDKs) still choose; 'rfc8656' allows only 0x4000-0x4FFF.
   */
  readonly channelRange?: ChannelRange;
}

export type ChannelRange = 'rfc8656' | 'rfc5766';

const PASSWORD_ALGORITHMS_VALUE = {
  kind: 'password-algorithms',
  algorithms: [
    { algorithm: PasswordAlgorithm.SHA256, parameters: Buffer.alloc(0) },
    { algorithm: PasswordAlgorithm.MD5, parameters: Buffer.alloc(0) },
  ],
} as const;
/** The PASSWORD-ALGORITHMS value as sent in challenges, which a client must echo byte for byte. */
const PASSWORD_ALGORITHMS_BYTES = new MessageBuilder(Method.Binding, MessageClass.Request)
  .add(AttributeType.PasswordAlgorithms, PASSWORD_ALGORITHMS_VALUE)
  .build()
  .subarray(HEADER_LENGTH + 4);
const PORT_BIND_ATTEMPTS = 16;
/** How long the odd port of an EVEN-PORT pair stays reserved (RFC 8656 §7.2: about 30 s). */
const RESERVATION_MS = 30_000;

interface Reservation {
  readonly port: number | undefined;
  /** The family of the allocation that reserved it: the token stands for an address of that family. */
  readonly family: IpFamily;
  readonly expiresAt: number;
}

interface PortChoice {
  readonly port: number;
  /** The next port, kept for a later Allocate with RESERVATION-TOKEN. */
  readonly reserve?: number;
}

interface Authenticated {
  readonly username: string;
  readonly password: string;
  readonly credential: Credential | undefined;
  readonly key: Buffer;
  /** MESSAGE-INTEGRITY-SHA256 was used (answer in kind). */
  readonly sha256: boolean;
  /** PASSWORD-ALGORITHM the key was derived with. */
  readonly algorithm: number;
}

/** What every response needs to know about its request. */
interface Reply {
  readonly client: Client;
  readonly msg: StunMessage;
  auth: Authenticated | undefined;
}

/** True for an IPv4-mapped IPv6 address, ::ffff:0:0/96 (RFC 4291 §2.5.5.2). */
function isIpv4Mapped(ip: Buffer): boolean {
  if (ip.length !== 16 || ip[10] !== 0xff || ip[11] !== 0xff) return false;
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return false;
  return true;
}

export class TurnCore {
  readonly stats = new CoreStats();
  readonly #o: CoreOptions;
  readonly #life: Lifetimes;
  readonly #limits: Limits;
  readonly #now: () => number;
  readonly #nonces: NonceIssuer;
  readonly #filtering: Filtering;
  readonly #allocations = new Set<Allocation>();
  readonly #perUser = new Map<string, number>();
  readonly #reservations = new Map<string, Reservation>();
  readonly #total: TokenBucket;
  #policy: PeerPolicy;
  #lookup: CredentialLookup;
  #nextId = 1;
  readonly #tid = randomBytes(12);

  constructor(options: CoreOptions) {
    this.#o = options;
    this.#life = { ...DEFAULT_LIFETIMES, ...options.lifetimes };
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#now = options.now ?? Date.now;
    this.#nonces = new NonceIssuer(this.#life.nonceSec * 1000, options.nonceSecret);
    this.#filtering = options.filtering ?? 'address-and-port';
    this.#policy = options.policy;
    this.#lookup = options.lookup;
    const bw = this.#limits.bandwidthTotal;
    this.#total = new TokenBucket(bw, bw, this.#now());
  }

  get allocationCount(): number {
    return this.#allocations.size;
  }

  get allocations(): ReadonlySet<Allocation> {
    return this.#allocations;
  }

  /** SIGHUP: new policy and credentials apply to new requests; allocations stay. */
  reload(policy: PeerPolicy, lookup: CredentialLookup): void {
    this.#policy = policy;
    this.#lookup = lookup;
  }

  // ---------------------------------------------------------------- inputs

  /** A UDP datagram from a client: STUN or ChannelData; anything else is dropped. */
  handleClientDatagram(client: Client, data: Buffer): void {
    const first = data[0];
    if (first === undefined) return;
    if (first < 0x40) this.handleStun(client, data);
    else if (first < 0x80) this.handleChannelData(client, data);
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
    const len = frame.readUInt16BE(2);
    if (frame.length < 4 + len) {
      this.stats.malformed++;
      return;
    }
    const channel = alloc.channels.get(frame.readUInt16BE(0));
    const now = this.#now();
    if (channel === undefined || channel.expiresAt <= now || channel.peer.permission.expiresAt <= now) {
      this.stats.droppedNoPermission++;
      return;
    }
    this.#toPeer(alloc, channel.peer, frame, 4, len, now);
  }

  /** A complete STUN message from the client. */
  handleStun(client: Client, raw: Buffer): void {
    const decoded = decodeMessage(raw);
    if (!decoded.ok) {
      this.stats.malformed++;
      this.#badRequestFromHeader(client, raw);
      return;
    }
    const msg = decoded.value;
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
      if (msg.method !== Method.Send || msg.unknownRequired.length > 0 || getAttribute(msg, AttributeType.DontFragment)) return;
      this.#onSend(client, msg);
      return;
    }
    if (msg.messageClass !== MessageClass.Request) return;
    const r: Reply = { client, msg, auth: undefined };
    if (msg.method === Method.Binding) {
      if (msg.unknownRequired.length > 0) return this.#unknownAttributes(r);
      return this.#onBinding(r);
    }
    const known =
      msg.method === Method.Allocate ||
      msg.method === Method.Refresh ||
      msg.method === Method.CreatePermission ||
      msg.method === Method.ChannelBind;
    if (!known) return this.#error(r, ErrorCode.BadRequest);
    if (!this.#authenticate(r)) return;
    // Node cannot set DF on relayed datagrams, so per RFC 8656 §7.2 an Allocate asking for it is
    // treated as carrying an unknown comprehension-required attribute (the client retries without).
    if (msg.method === Method.Allocate && getAttribute(msg, AttributeType.DontFragment)) {
      return this.#unknownAttributes(r, [...msg.unknownRequired, AttributeType.DontFragment]);
    }
    if (msg.unknownRequired.length > 0) return this.#unknownAttributes(r);
    switch (msg.method) {
      case Method.Allocate:
        return this.#onAllocate(r);
      case Method.Refresh:
        return this.#onRefresh(r);
      case Method.CreatePermission:
        return this.#onCreatePermission(r);
      default:
        return this.#onChannelBind(r);
    }
  }

  /** A datagram that arrived on a relay socket from a peer: the hot path to the client. */
  handlePeerDatagram(relay: Relay, data: Buffer, address: string, port: number): void {
    const alloc = relay.allocation;
    if (alloc.deleted) return;
    const now = this.#now();
    const perm = alloc.permissions.get(address);
    if (perm === undefined || perm.expiresAt <= now || perm.relay !== relay) {
      this.stats.droppedFiltered++;
      return;
    }
    let peer = perm.peers.get(port);
    if (this.#filtering === 'address-and-port') {
      if (peer === undefined || now - peer.lastSentAt > this.#life.permissionSec * 1000) {
        this.stats.droppedFiltered++;
        return;
      }
    } else if (peer === undefined) {
      peer = this.#newPeer(alloc, perm, port, now);
      if (peer === undefined) {
        this.stats.droppedFiltered++;
        return;
      }
    }
    peer.answered = true;
    const len = data.length;
    const ch = peer.channel;
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

  /** The client's TCP/TLS connection closed (or a UDP client is forgotten): free at once. */
  clientClosed(client: Client): void {
    client.closed = true;
    if (client.allocation) this.#delete(client.allocation, 'client-closed');
  }

  /** Expires allocations, permissions and channels; call about once a second. */
  tick(): void {
    const now = this.#now();
    for (const [key, res] of this.#reservations) {
      if (res.expiresAt > now) continue;
      this.#reservations.delete(key);
      if (res.port !== undefined) this.#o.ports.give(res.port, now);
    }
    for (const alloc of this.#allocations) {
      if (alloc.expiresAt <= now) {
        this.#delete(alloc, 'expired');
        continue;
      }
      for (const [number, ch] of alloc.channels) {
        if (ch.expiresAt + CHANNEL_REBIND_GUARD_MS <= now) {
          alloc.channels.delete(number);
          ch.peer.channel = undefined;
        }
      }
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
    for (const alloc of [...this.#allocations]) this.#delete(alloc, 'shutdown');
  }

  // ---------------------------------------------------------------- relay path

  #toPeer(alloc: Allocation, peer: Peer, buf: Buffer, offset: number, len: number, now: number): void {
    if (!peer.answered) {
      if (peer.unanswered >= this.#limits.unansweredSends) {
        this.stats.droppedConsent++;
        return;
      }
      peer.unanswered++;
    }
    if (!alloc.bandwidth.take(len, now) || !this.#total.take(len, now)) {
      this.stats.droppedBandwidth++;
      return;
    }
    peer.lastSentAt = now;
    const perm = peer.permission;
    const socket = perm.relay.socket;
    if (socket === undefined) return;
    this.stats.packetsToPeer++;
    this.stats.bytesToPeer += len;
    socket.send(buf, offset, len, peer.port, perm.address);
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
    if (!this.#policy.allows(perm.ip, port)) {
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
    if (!peerAttr?.ok || peerAttr.value.kind !== 'address' || dataAttr === undefined) {
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
    this.#toPeer(alloc, peer, msg.raw, v.byteOffset - msg.raw.byteOffset, v.length, now);
  }

  // ---------------------------------------------------------------- methods

  #onBinding(r: Reply): void {
    this.#success(r, (b) => b.add(AttributeType.XorMappedAddress, { kind: 'address', address: r.client.remote }));
  }

  #onAllocate(r: Reply): void {
    const { client, msg } = r;
    const auth = r.auth as Authenticated;
    if (client.allocation) {
      const a = client.allocation;
      if (a.allocateTid && a.allocateResponse && a.allocateTid.equals(msg.transactionId)) {
        client.link.sendMessage(a.allocateResponse);
        return;
      }
      return this.#error(r, ErrorCode.AllocationMismatch);
    }
    if (client.pendingAllocate) {
      if (client.pendingAllocate.equals(msg.transactionId)) return; // retransmission while binding
      return this.#error(r, ErrorCode.AllocationMismatch);
    }
    const transport = readAttribute(msg, AttributeType.RequestedTransport);
    if (!transport?.ok || transport.value.kind !== 'requested-transport') return this.#error(r, ErrorCode.BadRequest);
    if (transport.value.protocol !== TransportProtocol.UDP) return this.#error(r, ErrorCode.UnsupportedTransportProtocol);
    const token = getAttribute(msg, AttributeType.ReservationToken);
    const evenPort = readAttribute(msg, AttributeType.EvenPort);
    const requested = readAttribute(msg, AttributeType.RequestedAddressFamily);
    const additional = readAttribute(msg, AttributeType.AdditionalAddressFamily);
    // RFC 8656 §7.2: a token names a reserved address, so it comes with no family or port wishes.
    if (token && (evenPort || requested || additional)) return this.#error(r, ErrorCode.BadRequest);
    if (requested && additional) return this.#error(r, ErrorCode.BadRequest);
    if ((requested && !requested.ok) || (additional && !additional.ok) || (evenPort && !evenPort.ok)) {
      return this.#error(r, ErrorCode.BadRequest);
    }
    let reserved: Reservation | undefined;
    const tokenKey = token?.value.toString('hex');
    if (tokenKey !== undefined) {
      // A token is good once, for the port kept next to an earlier EVEN-PORT allocation; it is
      // used up only once every check below has passed, so a refused request keeps it.
      reserved = this.#reservations.get(tokenKey);
      if (!reserved || reserved.expiresAt <= this.#now()) return this.#error(r, ErrorCode.InsufficientCapacity);
    }
    const reservePair = evenPort?.ok === true && evenPort.value.kind === 'even-port' && evenPort.value.reserve;
    // RFC 8656 §7.2 step 8: one reservation token cannot stand for a pair in each of two families.
    if (reservePair && additional) return this.#error(r, ErrorCode.BadRequest);
    // A token's allocation has the family of the one that reserved it (an IPv6 RTCP port pair
    // stays IPv6), not the IPv4 default.
    let families: IpFamily[] = reserved ? [reserved.family] : ['IPv4'];
    let v6Unavailable = false;
    if (requested?.ok && requested.value.kind === 'family') families = [requested.value.family];
    if (additional?.ok && additional.value.kind === 'family') {
      // ADDITIONAL-ADDRESS-FAMILY may only ask for IPv6 in addition to IPv4.
      if (additional.value.family !== 'IPv6') return this.#error(r, ErrorCode.BadRequest);
      if (this.#o.relay6) families = ['IPv4', 'IPv6'];
      else v6Unavailable = true;
    }
    for (const f of families) {
      if (!(f === 'IPv4' ? this.#o.relay4 : this.#o.relay6)) return this.#error(r, ErrorCode.AddressFamilyNotSupported);
    }
    const now = this.#now();
    const cred = auth.credential;
    if (cred?.expiresAtMs !== undefined && cred.expiresAtMs <= now) {
      this.stats.authFailures++;
      return this.#challenge(r, ErrorCode.Unauthorized);
    }
    if ((this.#perUser.get(auth.username) ?? 0) >= this.#limits.allocationsPerUser) {
      this.stats.countQuota('allocations-per-user');
      return this.#error(r, ErrorCode.AllocationQuotaReached);
    }
    if (this.#allocations.size >= this.#limits.allocations) {
      this.stats.countQuota('allocations');
      return this.#error(r, ErrorCode.InsufficientCapacity);
    }
    if (tokenKey !== undefined) this.#reservations.delete(tokenKey);
    const lifetime = this.#lifetime(msg, true);
    const alloc = new Allocation(
      this.#nextId++,
      client,
      { username: auth.username, realm: this.#o.realm, password: auth.password, credentialExpiresAt: cred?.expiresAtMs },
      now + lifetime * 1000,
      now,
      this.#limits.bandwidthPerAllocation,
      this.#limits.newPeersPerSecond,
    );
    alloc.keys.set(auth.algorithm, auth.key);
    const pick = (): PortChoice | undefined => {
      if (reserved) {
        const port = reserved.port;
        reserved = undefined; // one attempt: the reserved port or nothing
        return port === undefined ? undefined : { port };
      }
      if (reservePair) {
        const pair = this.#o.ports.takePair(this.#now());
        return pair && { port: pair[0], reserve: pair[1] };
      }
      const port = this.#o.ports.take(this.#now(), evenPort !== undefined);
      return port === undefined ? undefined : { port };
    };
    client.pendingAllocate = Buffer.from(msg.transactionId);
    // Quotas count the allocation from now on, so parallel requests cannot overshoot.
    this.#allocations.add(alloc);
    this.#perUser.set(auth.username, (this.#perUser.get(auth.username) ?? 0) + 1);
    let waiting = families.length;
    let failed = false;
    const finished = (): void => {
      client.pendingAllocate = undefined;
      if (failed || client.closed) {
        this.#delete(alloc, failed ? 'no-port' : 'client-closed', false);
        if (failed && !client.closed) {
          this.stats.countQuota('relay-ports');
          this.#error(r, ErrorCode.InsufficientCapacity);
        }
        return;
      }
      client.allocation = alloc;
      client.link.allocated?.();
      this.stats.allocationsCreated++;
      const response = this.#build(r, MessageClass.SuccessResponse, (b) => {
        for (const relay of [alloc.relay4, alloc.relay6]) {
          if (relay) b.add(AttributeType.XorRelayedAddress, { kind: 'address', address: relay.external });
        }
        if (alloc.reservationToken) b.add(AttributeType.ReservationToken, { kind: 'bytes', bytes: alloc.reservationToken });
        if (v6Unavailable) {
          b.add(AttributeType.AddressErrorCode, { kind: 'address-error-code', family: 'IPv6', code: 440, reason: 'Address Family not Supported' });
        }
        b.add(AttributeType.Lifetime, { kind: 'uint32', value: lifetime });
        b.add(AttributeType.XorMappedAddress, { kind: 'address', address: client.remote });
      });
      alloc.allocateTid = Buffer.from(msg.transactionId);
      alloc.allocateResponse = response;
      client.link.sendMessage(response);
      this.#o.events?.event('allocation-created', {
        allocation: alloc.id,
        transport: client.transport,
        lifetime,
        username: auth.username,
        client: `${client.remote.address}:${client.remote.port}`,
      });
    };
    for (const family of families) {
      this.#bindRelay(alloc, family, pick, PORT_BIND_ATTEMPTS, (ok) => {
        if (!ok) failed = true;
        if (--waiting === 0) finished();
      });
    }
  }

  #bindRelay(alloc: Allocation, family: IpFamily, pick: () => PortChoice | undefined, attempts: number, done: (ok: boolean) => void): void {
    const addr = (family === 'IPv4' ? this.#o.relay4 : this.#o.relay6) as RelayAddress;
    const choice = pick();
    if (choice === undefined) return done(false);
    const { port, reserve } = choice;
    const relay = new Relay(alloc, family, addr.bind, port, { family, address: addr.external, port });
    this.#o.binder.bind(relay, (socket) => {
      if (socket === undefined) {
        // In use by someone else: like a released port, it is tried again after the quarantine.
        this.#o.ports.give(port, this.#now());
        if (reserve !== undefined) this.#o.ports.give(reserve, this.#now());
        if (attempts > 1) return this.#bindRelay(alloc, family, pick, attempts - 1, done);
        return done(false);
      }
      relay.socket = socket;
      if (family === 'IPv4') alloc.relay4 = relay;
      else alloc.relay6 = relay;
      if (reserve !== undefined) {
        const tokenBytes = randomBytes(8);
        alloc.reservationToken = tokenBytes;
        this.#reservations.set(tokenBytes.toString('hex'), { port: reserve, family, expiresAt: this.#now() + RESERVATION_MS });
      }
      done(true);
    });
  }

  #onRefresh(r: Reply): void {
    const alloc = r.client.allocation;
    if (!alloc) return this.#error(r, ErrorCode.AllocationMismatch);
    const fam = readAttribute(r.msg, AttributeType.RequestedAddressFamily);
    if (fam) {
      if (!fam.ok || fam.value.kind !== 'family') return this.#error(r, ErrorCode.BadRequest);
      if (!alloc.relayFor(fam.value.family)) return this.#error(r, ErrorCode.PeerAddressFamilyMismatch);
    }
    const now = this.#now();
    const expiry = alloc.auth.credentialExpiresAt;
    if (this.#o.strictExpiry && expiry !== undefined && expiry <= now) {
      this.stats.authFailures++;
      return this.#challenge(r, ErrorCode.Unauthorized);
    }
    const lifetime = this.#lifetime(r.msg, false);
    if (lifetime === 0) {
      this.#success(r, (b) => b.add(AttributeType.Lifetime, { kind: 'uint32', value: 0 }));
      this.#delete(alloc, 'refresh-0');
      return;
    }
    alloc.expiresAt = now + lifetime * 1000;
    this.#success(r, (b) => b.add(AttributeType.Lifetime, { kind: 'uint32', value: lifetime }));
  }

  #lifetime(msg: StunMessage, allocate: boolean): number {
    const attr = readAttribute(msg, AttributeType.Lifetime);
    const req = attr?.ok && attr.value.kind === 'uint32' ? attr.value.value : undefined;
    const { allocationDefaultSec: def, allocationMaxSec: max } = this.#life;
    if (req === undefined) return def;
    // Allocate: at least the default (RFC 8656 §7.2); Refresh: what was asked, up to the maximum.
    if (!allocate) return Math.min(req, max);
    return Math.min(Math.max(req, def), max);
  }

  /** Peer addresses of a request, checked for family and policy; sends the error and returns undefined if any fails. */
  #peers(r: Reply, alloc: Allocation): { addr: TransportAddress; ip: Buffer; relay: Relay }[] | undefined {
    const attrs = readAttributes(r.msg, AttributeType.XorPeerAddress);
    if (attrs.length === 0) {
      this.#error(r, ErrorCode.BadRequest);
      return undefined;
    }
    const out: { addr: TransportAddress; ip: Buffer; relay: Relay }[] = [];
    for (const a of attrs) {
      if (!a.ok || a.value.kind !== 'address') {
        this.#error(r, ErrorCode.BadRequest);
        return undefined;
      }
      const addr = a.value.address;
      const relay = alloc.relayFor(addr.family);
      if (!relay) {
        this.#error(r, ErrorCode.PeerAddressFamilyMismatch);
        return undefined;
      }
      const ip = parseIp(addr.address) as Buffer;
      if (!this.#policy.allows(ip, addr.port)) {
        this.stats.deniedPeers++;
        this.#o.events?.event('peer-denied', { allocation: alloc.id, peer: `${addr.address}:${addr.port}` }, 'debug');
        this.#error(r, ErrorCode.Forbidden);
        return undefined;
      }
      // ::ffff:a.b.c.d is an IPv4 peer in IPv6 spelling: a datagram to it leaves as IPv4, which a
      // relay socket bound to an IPv6 address cannot send (ENETUNREACH), so the permission would
      // succeed and relay nothing. It is a peer of the other family (443). After the policy, so
      // a denied address is 403 however it is spelled.
      if (isIpv4Mapped(ip)) {
        this.#error(r, ErrorCode.PeerAddressFamilyMismatch);
        return undefined;
      }
      out.push({ addr, ip, relay });
    }
    return out;
  }

  /** Finds or installs the permission for a peer address; undefined when a quota stops it. */
  #permission(alloc: Allocation, ip: Buffer, relay: Relay, now: number): Permission | undefined {
    const key = formatIp(ip);
    const existing = alloc.permissions.get(key);
    const expiresAt = now + this.#life.permissionSec * 1000;
    if (existing) {
      existing.expiresAt = expiresAt;
      return existing;
    }
    if (alloc.permissions.size >= this.#limits.permissionsPerAllocation) {
      this.stats.countQuota('permissions');
      return undefined;
    }
    if (!alloc.newPeers.take(1, now)) {
      this.stats.countQuota('new-peer-rate');
      return undefined;
    }
    const perm = new Permission(key, ip, relay, expiresAt);
    alloc.permissions.set(key, perm);
    return perm;
  }

  #onCreatePermission(r: Reply): void {
    const alloc = r.client.allocation;
    if (!alloc) return this.#error(r, ErrorCode.AllocationMismatch);
    const peers = this.#peers(r, alloc);
    if (!peers) return;
    const now = this.#now();
    // All or nothing: every quota is checked for the whole list before any permission is made.
    const fresh = new Set<string>();
    for (const p of peers) {
      const key = formatIp(p.ip);
      if (!alloc.permissions.has(key)) fresh.add(key);
    }
    if (alloc.permissions.size + fresh.size > this.#limits.permissionsPerAllocation) {
      this.stats.countQuota('permissions');
      return this.#error(r, ErrorCode.InsufficientCapacity);
    }
    if (fresh.size > 0 && !alloc.newPeers.take(fresh.size, now)) {
      this.stats.countQuota('new-peer-rate');
      return this.#error(r, ErrorCode.InsufficientCapacity);
    }
    const expiresAt = now + this.#life.permissionSec * 1000;
    for (const p of peers) {
      const key = formatIp(p.ip);
      const existing = alloc.permissions.get(key);
      if (existing) existing.expiresAt = expiresAt;
      else alloc.permissions.set(key, new Permission(key, p.ip, p.relay, expiresAt));
    }
    this.#success(r, () => undefined);
  }

  #onChannelBind(r: Reply): void {
    const alloc = r.client.allocation;
    if (!alloc) return this.#error(r, ErrorCode.AllocationMismatch);
    const chAttr = readAttribute(r.msg, AttributeType.ChannelNumber);
    if (!chAttr?.ok || chAttr.value.kind !== 'channel-number' || !this.#channelAllowed(chAttr.value.channel)) {
      return this.#error(r, ErrorCode.BadRequest);
    }
    const number = chAttr.value.channel;
    const peers = this.#peers(r, alloc);
    if (!peers) return;
    const { addr, ip, relay } = peers[0] as { addr: TransportAddress; ip: Buffer; relay: Relay };
    const now = this.#now();
    const key = formatIp(ip);
    const bound = alloc.channels.get(number);
    const existingPerm = alloc.permissions.get(key);
    const existingPeer = existingPerm?.peers.get(addr.port);
    // A channel belongs to one peer, a peer to one channel, until the channel is long gone.
    if (bound && bound.peer !== existingPeer) return this.#error(r, ErrorCode.BadRequest);
    if (existingPeer?.channel && existingPeer.channel.number !== number) return this.#error(r, ErrorCode.BadRequest);
    if (!bound && alloc.channels.size >= this.#limits.channelsPerAllocation) {
      this.stats.countQuota('channels');
      return this.#error(r, ErrorCode.InsufficientCapacity);
    }
    const perm = this.#permission(alloc, ip, relay, now);
    if (!perm) return this.#error(r, ErrorCode.InsufficientCapacity);
    const peer = perm.peers.get(addr.port) ?? this.#newPeer(alloc, perm, addr.port, now);
    if (!peer) return this.#error(r, ErrorCode.InsufficientCapacity);
    const expiresAt = now + this.#life.channelSec * 1000;
    if (bound) bound.expiresAt = expiresAt;
    else {
      const ch = new Channel(number, peer, expiresAt);
      peer.channel = ch;
      alloc.channels.set(number, ch);
    }
    this.#success(r, () => undefined);
  }

  #channelAllowed(n: number): boolean {
    if (this.#o.channelRange === 'rfc8656') return isValidChannelNumber(n);
    return n >= 0x4000 && n <= 0x7fff;
  }

  #delete(alloc: Allocation, reason: string, counted = true): void {
    if (alloc.deleted) return;
    alloc.deleted = true;
    this.#allocations.delete(alloc);
    const user = alloc.auth.username;
    const n = (this.#perUser.get(user) ?? 1) - 1;
    if (n <= 0) this.#perUser.delete(user);
    else this.#perUser.set(user, n);
    const now = this.#now();
    for (const relay of [alloc.relay4, alloc.relay6]) {
      if (!relay) continue;
      relay.socket?.close();
      relay.socket = undefined;
      this.#o.ports.give(relay.port, now);
    }
    alloc.permissions.clear();
    alloc.channels.clear();
    if (alloc.client.allocation === alloc) {
      alloc.client.allocation = undefined;
      if (!alloc.client.closed) alloc.client.link.released?.();
    }
    if (counted) {
      this.stats.allocationsDeleted++;
      this.#o.events?.event('allocation-deleted', { allocation: alloc.id, reason });
    }
  }

  // ---------------------------------------------------------------- auth

  /** Long-term credential check (RFC 8489 §9.2.4); on failure the error is sent and false returned. */
  #authenticate(r: Reply): boolean {
    const { msg, client } = r;
    if (msg.integrityOffset < 0 && msg.integritySha256Offset < 0) {
      this.#challenge(r, ErrorCode.Unauthorized);
      return false;
    }
    const username = readAttribute(msg, AttributeType.Username);
    const realm = readAttribute(msg, AttributeType.Realm);
    const nonce = readAttribute(msg, AttributeType.Nonce);
    if (username?.ok !== true || realm?.ok !== true || nonce?.ok !== true) {
      this.#error(r, ErrorCode.BadRequest);
      return false;
    }
    if (username.value.kind !== 'text' || realm.value.kind !== 'text' || nonce.value.kind !== 'text') return false;
    const now = this.#now();
    const nonceState = this.#nonces.check(nonce.value.text, client.key, now);
    if (nonceState !== 'ok') {
      this.#challenge(r, ErrorCode.StaleNonce);
      return false;
    }
    let algorithm: number = PasswordAlgorithm.MD5;
    const alg = readAttribute(msg, AttributeType.PasswordAlgorithm);
    const algs = getAttribute(msg, AttributeType.PasswordAlgorithms);
    // RFC 8489 §9.2.4: neither means MD5; otherwise both, and the list exactly as we sent it
    // (so a downgrade by a middlebox shows up).
    if (alg || algs) {
      if (!alg?.ok || alg.value.kind !== 'password-algorithm' || !algs || !algs.value.equals(PASSWORD_ALGORITHMS_BYTES)) {
        this.#error(r, ErrorCode.BadRequest);
        return false;
      }
      algorithm = alg.value.algorithm.algorithm;
      if (algorithm !== PasswordAlgorithm.MD5 && algorithm !== PasswordAlgorithm.SHA256) {
        this.#error(r, ErrorCode.BadRequest);
        return false;
      }
    }
    const name = username.value.text;
    if (realm.value.text !== this.#o.realm) {
      this.stats.authFailures++;
      this.#challenge(r, ErrorCode.Unauthorized);
      return false;
    }
    const sha256 = msg.integritySha256Offset >= 0;
    const alloc = client.allocation;
    if (alloc) {
      if (alloc.auth.username !== name) {
        this.#error(r, ErrorCode.WrongCredentials);
        return false;
      }
      let key = alloc.keys.get(algorithm);
      if (!key) {
        key = longTermKey(name, this.#o.realm, alloc.auth.password, algorithm);
        alloc.keys.set(algorithm, key);
      }
      if (verifyIntegrity(msg, key) !== 'ok') {
        this.stats.authFailures++;
        this.#challenge(r, ErrorCode.Unauthorized);
        return false;
      }
      r.auth = { username: name, password: alloc.auth.password, credential: undefined, key, sha256, algorithm };
      return true;
    }
    const cred = this.#lookup(name, this.#o.realm, now);
    if (cred) {
      for (const password of cred.passwords) {
        const key = longTermKey(name, this.#o.realm, password, algorithm);
        if (verifyIntegrity(msg, key) === 'ok') {
          r.auth = { username: name, password, credential: cred, key, sha256, algorithm };
          return true;
        }
      }
    }
    this.stats.authFailures++;
    this.#o.events?.event('auth-failed', { username: name, client: `${client.remote.address}:${client.remote.port}`, known: cred !== undefined }, 'debug');
    this.#challenge(r, ErrorCode.Unauthorized);
    return false;
  }

  // ---------------------------------------------------------------- responses

  #build(r: Reply, cls: MessageClass, fill: (b: MessageBuilder) => void): Buffer {
    const b = new MessageBuilder(r.msg.method, cls, r.msg.transactionId);
    fill(b);
    if (this.#o.software !== undefined) b.add(AttributeType.Software, { kind: 'text', text: this.#o.software });
    const auth = r.auth;
    const fingerprint = r.msg.fingerprintOffset >= 0;
    if (!auth) return b.build({ fingerprint });
    return b.build({ integrityKey: auth.key, sha1: !auth.sha256, sha256: auth.sha256, fingerprint });
  }

  #success(r: Reply, fill: (b: MessageBuilder) => void): void {
    r.client.link.sendMessage(this.#build(r, MessageClass.SuccessResponse, fill));
  }

  #error(r: Reply, code: number, extra?: (b: MessageBuilder) => void): void {
    this.stats.countError(code);
    r.client.link.sendMessage(
      this.#build(r, MessageClass.ErrorResponse, (b) => {
        b.add(AttributeType.ErrorCode, errorCodeValue(code));
        extra?.(b);
      }),
    );
  }

  /** 401 or 438 with a fresh nonce, the realm and the password algorithms (no integrity). */
  #challenge(r: Reply, code: number): void {
    r.auth = undefined;
    const nonce = this.#nonces.issue(r.client.key, this.#now());
    this.#error(r, code, (b) => {
      b.add(AttributeType.Realm, { kind: 'text', text: this.#o.realm });
      b.add(AttributeType.Nonce, { kind: 'text', text: nonce });
      b.add(AttributeType.PasswordAlgorithms, PASSWORD_ALGORITHMS_VALUE);
    });
  }

  #unknownAttributes(r: Reply, types: readonly number[] = r.msg.unknownRequired): void {
    this.#error(r, ErrorCode.UnknownAttribute, (b) => b.add(AttributeType.UnknownAttributes, { kind: 'unknown-attributes', types }));
  }

  /** A request too broken to decode still gets 400 when its header is readable. */
  #badRequestFromHeader(client: Client, raw: Buffer): void {
    if (raw.length < HEADER_LENGTH || raw.readUInt32BE(4) !== MAGIC_COOKIE) return;
    const type = raw.readUInt16BE(0);
    if ((type & 0x0110) !== 0) return; // only requests get answers
    const b = new MessageBuilder(methodOf(type), MessageClass.ErrorResponse, raw.subarray(8, HEADER_LENGTH));
    b.add(AttributeType.ErrorCode, errorCodeValue(ErrorCode.BadRequest));
    this.stats.countError(ErrorCode.BadRequest);
    client.link.sendMessage(b.build());
  }
}
