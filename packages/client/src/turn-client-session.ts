// The shim as a TURN client (sans-IO) for datagrams that arrive without TURN: SOCKS5 UDP
// associations and UDP port forwards. One session is one allocation on one Tor stream
// (TURN-over-TCP): Allocate signed with the shim's own upstream credential (401 and 438 answered
// here), Refresh before the allocation expires, per peer a CreatePermission and a ChannelBind
// (kept alive before they lapse), ChannelData out (padded, TCP), ChannelData and Data
// indications in. Inputs are the stream's bytes and the time; outputs are typed actions.
// Mobility (RFC 8016): the Allocate asks for a MOBILITY-TICKET; when the Tor stream dies the
// shell calls detach(), opens a new stream on a fresh circuit and calls reattach(), which shows
// the ticket in a Refresh: the server moves the allocation (relay address, permissions, channels)
// to the new stream. Datagrams in the gap are dropped, not queued.
import { randomBytes } from 'node:crypto';
import {
  AttributeType,
  ChannelNumber,
  ErrorCode,
  FrameKind,
  MessageBuilder,
  MessageClass,
  Method,
  StreamFramer,
  TRANSACTION_ID_LENGTH,
  TransportProtocol,
  channelDataPadding,
  decodeChannelData,
  decodeMessage,
  encodeChannelData,
  longTermKey,
  readAddressAttribute,
  readText,
  readUint32,
  verifyIntegrity,
  type StunMessage,
  type TransportAddress,
  readAttribute,
  readErrorCode,
} from '@onionturn/protocol';
import type { UpstreamCredential } from './credential-resigner.js';
import { udpFlowKey } from './flow-table.js';
import { MOVE_ANSWER_TIMEOUT_MS } from './mobility-auth.js';

export type SessionAction =
  /** Write `data` then `pad` zero bytes to the Tor stream. */
  | { readonly kind: 'send-upstream'; readonly data: Buffer; readonly pad: number }
  /** A datagram from `peer` for the app. */
  | { readonly kind: 'deliver'; readonly peer: TransportAddress; readonly data: Buffer }
  /** A line for the log (never an address unless the shell's logger is in detail mode). */
  | { readonly kind: 'warn'; readonly reason: string }
  /** The allocation was taken over on a new stream (mobility): traffic flows again. */
  | { readonly kind: 'moved' }
  /** The take-over Refresh went unanswered for MOVE_ANSWER_TIMEOUT_MS: give its stream up for another. */
  | { readonly kind: 'move-unanswered' }
  /** The session is over; the last action. */
  | { readonly kind: 'close'; readonly reason: string };

/** Requested allocation lifetime (s): RFC 8656's default. */
export const REQUESTED_LIFETIME_S = 600;
/** Refresh this long before the allocation, a permission or a channel would lapse. */
export const REFRESH_AHEAD_MS = 60_000;
/** RFC 8656: permissions last 300 s, channel bindings 600 s. */
export const PERMISSION_LIFETIME_MS = 300_000;
export const CHANNEL_LIFETIME_MS = 600_000;
/** A request unanswered this long ends the session (the stream is TCP: no retransmissions). */
export const TRANSACTION_TIMEOUT_MS = 30_000;
/** 401/438 challenges answered per request before giving up. */
const MAX_ATTEMPTS = 3;
const MOVE_UNANSWERED_ACTION: SessionAction = Object.freeze({ kind: 'move-unanswered' });
/** Peers (channels) one session holds; more are refused (counted by the caller). */
export const DEFAULT_MAX_PEERS = 64;
/** Datagrams held per session while the allocation or a channel is not ready yet. */
export const DEFAULT_MAX_QUEUED = 64;
const MAX_QUEUED_BYTES = 256 * 1024;

type TxKind = 'allocate' | 'refresh' | 'permission' | 'channel' | 'move';

interface Transaction {
  readonly kind: TxKind;
  readonly peer: Peer | undefined;
  attempts: number;
  readonly sentAt: number;
}

interface Peer {
  readonly address: TransportAddress;
  readonly key: string;
  readonly channel: number;
  bound: boolean;
  /** Refused by the server (403: its peer policy): datagrams to it are dropped. */
  refused: boolean;
  permissionDueAt: number;
  channelDueAt: number;
  permissionPending: boolean;
  channelPending: boolean;
  /**
   * A CreatePermission went on this stream: what follows it in the stream finds the permission
   * installed (the server reads a TCP stream in order), so datagrams go at once as Send
   * indications until the channel is bound, instead of waiting a round trip for it.
   */
  permissionSent: boolean;
  /** Datagrams waiting for the permission (before the allocation). */
  queue: Buffer[];
}

export type SendVerdict = 'sent' | 'queued' | 'dropped-queue' | 'dropped-peers' | 'dropped-refused' | 'dropped-closed' | 'dropped-size' | 'dropped-gap';

export interface TurnClientSessionOptions {
  readonly credential: UpstreamCredential;
  readonly now: number;
  readonly maxPeers?: number;
  readonly maxQueued?: number;
  /** Transaction ids (tests pass a fixed source). */
  readonly random?: (n: number) => Buffer;
}

/** Largest datagram one ChannelData message carries. */
export const MAX_DATAGRAM = 0xffff;

export class TurnClientSession {
  readonly #cred: UpstreamCredential;
  readonly #random: (n: number) => Buffer;
  readonly #maxPeers: number;
  readonly #maxQueued: number;
  readonly #framer: StreamFramer;
  readonly #tx = new Map<string, Transaction>();
  readonly #peers = new Map<string, Peer>();
  readonly #byChannel = new Map<number, Peer>();
  #realm: string | undefined;
  #nonce: string | undefined;
  #key: Buffer | undefined;
  #allocated = false;
  #closed = false;
  #closeReason: string | undefined;
  #refreshDueAt = Number.POSITIVE_INFINITY;
  #nextChannel: number = ChannelNumber.Min;
  #queuedCount = 0;
  #queuedBytes = 0;
  /** RFC 8016: asked for at Allocate until a server refuses (405); the newest ticket. */
  #askMobility = true;
  #ticket: Buffer | undefined;
  /** Between detach() and the take-over's answer: no stream, or a new one not yet ours. */
  #detached = false;
  /** Messages from upstream that failed to parse or to authenticate: dropped, counted. */
  dropped = 0;
  #out: SessionAction[] = [];
  #now: number;

  constructor(opts: TurnClientSessionOptions) {
    this.#cred = opts.credential;
    this.#random = opts.random ?? randomBytes;
    this.#maxPeers = opts.maxPeers ?? DEFAULT_MAX_PEERS;
    this.#maxQueued = opts.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.#now = opts.now;
    this.#framer = new StreamFramer(this.#onFrame.bind(this), { rfc5766Channels: true });
  }

  get allocated(): boolean {
    return this.#allocated;
  }

  isClosed(): boolean {
    return this.#closed;
  }

  /** The allocation could be taken over on a new stream (the server gave a ticket). */
  get movable(): boolean {
    return this.#allocated && this.#ticket !== undefined && !this.#closed;
  }

  get detached(): boolean {
    return this.#detached;
  }

  /**
   * The Tor stream is gone but the allocation may live on (movable): nothing is sent until
   * reattach(); what the app sends meanwhile is dropped ('dropped-gap'), and so is what was queued.
   */
  detach(now: number): SessionAction[] {
    const out = this.#begin(now);
    if (this.#closed) return out;
    this.#detached = true;
    this.#tx.clear();
    this.#framer.reset();
    for (const p of this.#peers.values()) {
      p.queue = [];
      p.permissionPending = false;
      p.channelPending = false;
      // A permission asked for on the lost stream may never have arrived: asked again after the move.
      if (!p.bound) p.permissionSent = false;
    }
    this.#queuedCount = 0;
    this.#queuedBytes = 0;
    return out;
  }

  /**
   * A new Tor stream is open: take the allocation over with the ticket (a Refresh). `challenge`:
   * the 401 a held stream asked for ahead; its nonce is this connection's, so the Refresh needs no
   * 438 first.
   */
  reattach(now: number, challenge?: StunMessage): SessionAction[] {
    const out = this.#begin(now);
    if (this.#closed || !this.#detached) return out;
    if (challenge) this.#adopt(readText(challenge, AttributeType.Realm), readText(challenge, AttributeType.Nonce));
    this.#request('move', undefined, 1);
    return out;
  }

  get closeReason(): string | undefined {
    return this.#closeReason;
  }

  /**
   * The Tor stream is open: ask for the allocation (unsigned first, to learn realm and nonce).
   * `challenge`: the server's 401 on this stream, asked for ahead (a stream held ready: its realm
   * and nonce are this connection's), so the first Allocate goes signed: a round trip fewer.
   */
  start(now: number, challenge?: StunMessage): SessionAction[] {
    const out = this.#begin(now);
    if (challenge) this.#adopt(readText(challenge, AttributeType.Realm), readText(challenge, AttributeType.Nonce));
    // Counted as the second attempt when signed: a 401 to it with this realm means a wrong credential.
    this.#request('allocate', undefined, this.#key ? 2 : 1);
    return out;
  }

  /** An app datagram for `peer` (an IP address). */
  send(peer: TransportAddress, data: Buffer, now: number): { verdict: SendVerdict; actions: SessionAction[] } {
    const out = this.#begin(now);
    if (this.#closed) return { verdict: 'dropped-closed', actions: out };
    if (data.length > MAX_DATAGRAM) return { verdict: 'dropped-size', actions: out };
    const key = udpFlowKey(peer.address, peer.port);
    let p = this.#peers.get(key);
    if (p === undefined) {
      if (this.#peers.size >= this.#maxPeers || this.#nextChannel > ChannelNumber.Max) return { verdict: 'dropped-peers', actions: out };
      p = {
        address: peer,
        key,
        channel: this.#nextChannel++,
        bound: false,
        refused: false,
        permissionDueAt: 0,
        channelDueAt: 0,
        permissionPending: false,
        channelPending: false,
        permissionSent: false,
        queue: [],
      };
      this.#peers.set(key, p);
      this.#byChannel.set(p.channel, p);
      if (this.#allocated) this.#bindPeer(p);
    }
    if (p.refused) return { verdict: 'dropped-refused', actions: out };
    if (this.#detached) return { verdict: 'dropped-gap', actions: out };
    if (p.bound) {
      out.push({ kind: 'send-upstream', data: encodeChannelData(p.channel, data, false), pad: channelDataPadding(data.length) });
      return { verdict: 'sent', actions: out };
    }
    if (p.permissionSent) {
      out.push({ kind: 'send-upstream', data: this.#sendIndication(p, data), pad: 0 });
      return { verdict: 'sent', actions: out };
    }
    if (this.#queuedCount >= this.#maxQueued || this.#queuedBytes + data.length > MAX_QUEUED_BYTES) return { verdict: 'dropped-queue', actions: out };
    // A copy: the caller's buffer (a view of a socket read) is not ours to keep.
    p.queue.push(Buffer.from(data));
    this.#queuedCount++;
    this.#queuedBytes += data.length;
    return { verdict: 'queued', actions: out };
  }

  /** A chunk of the Tor stream. */
  fromUpstream(chunk: Buffer, now: number): SessionAction[] {
    const out = this.#begin(now);
    if (this.#closed) return out;
    const err = this.#framer.push(chunk);
    if (err && !this.#closed) this.#close(`upstream sent data that is not TURN (${err.reason})`);
    return out;
  }

  /** The clock's tick: refreshes what is about to lapse, ends the session on a lost answer. */
  tick(now: number): SessionAction[] {
    const out = this.#begin(now);
    if (this.#closed) return out;
    for (const t of this.#tx.values()) {
      if (t.kind === 'move' && now - t.sentAt >= MOVE_ANSWER_TIMEOUT_MS) {
        this.#tx.clear();
        out.push(MOVE_UNANSWERED_ACTION);
        return out;
      }
      if (now - t.sentAt > TRANSACTION_TIMEOUT_MS) {
        this.#close(`the TURN server did not answer a ${t.kind} request within ${TRANSACTION_TIMEOUT_MS / 1000} s`);
        return out;
      }
    }
    if (!this.#allocated || this.#detached) return out;
    if (now >= this.#refreshDueAt) {
      this.#refreshDueAt = Number.POSITIVE_INFINITY;
      this.#request('refresh', undefined, 1);
    }
    for (const p of this.#peers.values()) {
      if (p.refused) continue;
      if (!p.permissionPending && now >= p.permissionDueAt) this.#request('permission', p, 1);
      if (!p.channelPending && now >= p.channelDueAt) this.#request('channel', p, 1);
    }
    return out;
  }

  /** Ends the session from outside; a Refresh with lifetime 0 releases the allocation. */
  close(reason: string, now: number): SessionAction[] {
    const out = this.#begin(now);
    if (this.#closed) return out;
    if (this.#allocated && this.#key && !this.#detached) {
      const b = this.#builder(Method.Refresh);
      b.add(AttributeType.Lifetime, { kind: 'uint32', value: 0 });
      out.push({ kind: 'send-upstream', data: this.#sign(b), pad: 0 });
    }
    this.#close(reason);
    return out;
  }

  #begin(now: number): SessionAction[] {
    this.#now = now;
    this.#out = [];
    return this.#out;
  }

  #close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    this.#tx.clear();
    for (const p of this.#peers.values()) p.queue = [];
    this.#queuedCount = 0;
    this.#queuedBytes = 0;
    this.#out.push({ kind: 'close', reason });
  }

  #builder(method: number, id: Buffer = this.#random(TRANSACTION_ID_LENGTH)): MessageBuilder {
    return new MessageBuilder(method, MessageClass.Request, id);
  }

  #sign(b: MessageBuilder): Buffer {
    b.add(AttributeType.Username, { kind: 'text', text: this.#cred.username });
    b.add(AttributeType.Realm, { kind: 'text', text: this.#realm as string });
    b.add(AttributeType.Nonce, { kind: 'text', text: this.#nonce as string });
    return b.build({ integrityKey: this.#key as Buffer, fingerprint: true });
  }

  #request(kind: TxKind, peer: Peer | undefined, attempts: number): void {
    const method =
      kind === 'allocate'
        ? Method.Allocate
        : kind === 'refresh' || kind === 'move'
          ? Method.Refresh
          : kind === 'permission'
            ? Method.CreatePermission
            : Method.ChannelBind;
    const id = this.#random(TRANSACTION_ID_LENGTH);
    const b = this.#builder(method, id);
    if (kind === 'allocate') b.add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: TransportProtocol.UDP });
    if (kind === 'allocate' && this.#askMobility) b.add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: Buffer.alloc(0) });
    if (kind === 'move') b.add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: this.#ticket as Buffer });
    if (kind === 'allocate' || kind === 'refresh' || kind === 'move') b.add(AttributeType.Lifetime, { kind: 'uint32', value: REQUESTED_LIFETIME_S });
    if (kind === 'channel') b.add(AttributeType.ChannelNumber, { kind: 'channel-number', channel: (peer as Peer).channel });
    if (peer) b.add(AttributeType.XorPeerAddress, { kind: 'address', address: peer.address });
    if (peer && kind === 'permission') peer.permissionPending = true;
    if (peer && kind === 'channel') peer.channelPending = true;
    // The first Allocate goes unsigned: its 401 brings the realm and nonce (RFC 8656 §7.2).
    const data = this.#key ? this.#sign(b) : b.build({ fingerprint: true });
    this.#tx.set(id.toString('hex'), { kind, peer, attempts, sentAt: this.#now });
    this.#out.push({ kind: 'send-upstream', data, pad: 0 });
  }

  #bindPeer(p: Peer): void {
    // Both at once: the permission is what lets the peer's answers in; the channel is the cheap path.
    this.#request('permission', p, 1);
    this.#request('channel', p, 1);
    // Right behind them, what waited: the first datagram to a peer crosses Tor once, not after a
    // round trip for the channel. Lost only if the permission is not installed (a 438 on a nonce
    // that went stale, or the peer refused), as a datagram may be.
    p.permissionSent = true;
    const q = p.queue;
    p.queue = [];
    for (const d of q) {
      this.#queuedCount--;
      this.#queuedBytes -= d.length;
      this.#out.push({ kind: 'send-upstream', data: this.#sendIndication(p, d), pad: 0 });
    }
  }

  /** A Send indication (RFC 8656 §11.3; not signed) carrying `data` to `p`. */
  #sendIndication(p: Peer, data: Buffer): Buffer {
    return new MessageBuilder(Method.Send, MessageClass.Indication, this.#random(TRANSACTION_ID_LENGTH))
      .add(AttributeType.XorPeerAddress, { kind: 'address', address: p.address })
      .add(AttributeType.Data, { kind: 'bytes', bytes: data })
      .build();
  }

  #onFrame(frame: Buffer, kind: FrameKind): void {
    if (this.#closed) return;
    if (kind === FrameKind.ChannelData) {
      const cd = decodeChannelData(frame);
      const p = cd.ok ? this.#byChannel.get(cd.value.channel) : undefined;
      if (!cd.ok || !p) {
        this.dropped++;
        return;
      }
      this.#out.push({ kind: 'deliver', peer: p.address, data: cd.value.data });
      return;
    }
    const r = decodeMessage(frame);
    if (!r.ok) {
      this.dropped++;
      return;
    }
    const msg = r.value;
    if (msg.messageClass === MessageClass.Indication) {
      if (msg.method !== Method.Data) return;
      const peer = readAddressAttribute(msg, AttributeType.XorPeerAddress);
      const data = readAttribute(msg, AttributeType.Data);
      if (!peer || !data?.ok || data.value.kind !== 'bytes') {
        this.dropped++;
        return;
      }
      this.#out.push({ kind: 'deliver', peer, data: data.value.bytes });
      return;
    }
    if (msg.messageClass === MessageClass.Request) return;
    const id = msg.transactionId.toString('hex');
    const t = this.#tx.get(id);
    if (!t) {
      this.dropped++;
      return;
    }
    // A success must carry the integrity of our key (an answer forged by anyone on the path is not one).
    if (msg.messageClass === MessageClass.SuccessResponse) {
      if (!this.#key || verifyIntegrity(msg, this.#key) !== 'ok') {
        this.dropped++;
        return;
      }
      this.#tx.delete(id);
      this.#success(t, msg);
      return;
    }
    this.#tx.delete(id);
    this.#error(t, msg);
  }

  #success(t: Transaction, msg: StunMessage): void {
    const now = this.#now;
    if (t.kind === 'allocate' || t.kind === 'refresh' || t.kind === 'move') {
      const lifetime = readUint32(msg, AttributeType.Lifetime) ?? REQUESTED_LIFETIME_S;
      this.#refreshDueAt = now + Math.max(lifetime * 1000 - REFRESH_AHEAD_MS, (lifetime * 1000) / 2);
      const ticket = readAttribute(msg, AttributeType.MobilityTicket);
      if (ticket?.ok && ticket.value.kind === 'bytes' && ticket.value.bytes.length > 0) this.#ticket = Buffer.from(ticket.value.bytes);
      if (t.kind === 'allocate') {
        this.#allocated = true;
        for (const p of this.#peers.values()) this.#bindPeer(p);
      }
      if (t.kind === 'move') {
        this.#detached = false;
        this.#out.push({ kind: 'moved' });
        // Requests lost with the old stream: a permission or channel not yet confirmed is asked again.
        for (const p of this.#peers.values()) if (!p.refused && !p.bound) this.#bindPeer(p);
      }
      return;
    }
    const p = t.peer as Peer;
    if (t.kind === 'permission') {
      p.permissionPending = false;
      p.permissionDueAt = now + PERMISSION_LIFETIME_MS - REFRESH_AHEAD_MS;
      return;
    }
    p.channelPending = false;
    p.channelDueAt = now + CHANNEL_LIFETIME_MS - REFRESH_AHEAD_MS;
    // Nothing waits for the channel: the queue went as Send indications with the permission.
    p.bound = true;
  }

  /**
   * Takes a challenge's nonce (and realm, with the key for it) when it has a nonce and a realm is
   * known (its own or one before); false when it is no use.
   */
  #adopt(realm: string | undefined, nonce: string | undefined): boolean {
    if (nonce === undefined || (realm === undefined && this.#realm === undefined)) return false;
    if (realm !== undefined && realm !== this.#realm) {
      this.#realm = realm;
      this.#key = longTermKey(this.#cred.username, realm, this.#cred.password);
    }
    this.#nonce = nonce;
    return true;
  }

  #error(t: Transaction, msg: StunMessage): void {
    const ec = readErrorCode(msg);
    const code = ec?.code ?? 0;
    if ((code === ErrorCode.Unauthorized || code === ErrorCode.StaleNonce) && t.attempts < MAX_ATTEMPTS) {
      const realm = readText(msg, AttributeType.Realm);
      const nonce = readText(msg, AttributeType.Nonce);
      // A 401 to a signed request, with the realm we already signed for: the credential is wrong.
      if (code === ErrorCode.Unauthorized && this.#key && nonce !== undefined && realm === this.#realm && t.attempts > 1) {
        this.#close("the TURN server refused the shim's upstream credential (401): check --upstream-secret-file / --credentials-url");
        return;
      }
      if (this.#adopt(realm, nonce)) {
        if (t.peer && t.kind === 'permission') t.peer.permissionPending = false;
        if (t.peer && t.kind === 'channel') t.peer.channelPending = false;
        this.#request(t.kind, t.peer, t.attempts + 1);
        return;
      }
    }
    const what = `${code} ${ec?.reason ?? ''}`.trim();
    if (t.kind === 'allocate' && code === ErrorCode.MobilityForbidden && this.#askMobility && t.attempts < MAX_ATTEMPTS) {
      // RFC 8016: a server that does not allow mobility; the allocation works without it.
      this.#askMobility = false;
      this.#request('allocate', undefined, t.attempts + 1);
      return;
    }
    if (t.kind === 'move') {
      this.#close(`mobility failed: the TURN server did not take the allocation over (${what}); was it restarted?`);
      return;
    }
    if (t.kind === 'allocate') {
      this.#close(
        code === ErrorCode.Unauthorized
          ? `the TURN server refused the shim's upstream credential (${what}): check --upstream-secret-file / --credentials-url`
          : `the TURN server refused the allocation (${what})`,
      );
      return;
    }
    if (t.kind === 'refresh') {
      this.#close(`the TURN server refused to refresh the allocation (${what})`);
      return;
    }
    const p = t.peer as Peer;
    if (code === ErrorCode.Forbidden || code === ErrorCode.PeerAddressFamilyMismatch || code === ErrorCode.BadRequest) {
      // The server's peer policy: this peer is not for us. Others stay usable.
      if (!p.refused) {
        p.refused = true;
        this.#queuedCount -= p.queue.length;
        for (const d of p.queue) this.#queuedBytes -= d.length;
        p.queue = [];
        this.#out.push({ kind: 'warn', reason: `the TURN server refused a peer (${what}): datagrams to it are dropped` });
      }
      return;
    }
    if (code === ErrorCode.AllocationMismatch) {
      this.#close(`the TURN server lost the allocation (${what})`);
      return;
    }
    this.#close(`the TURN server refused a ${t.kind} request (${what})`);
  }
}
