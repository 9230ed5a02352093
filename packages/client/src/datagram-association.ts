// One datagram flow that arrives without TURN: a SOCKS5 UDP association, or one local source of
// a UDP port forward. It routes each datagram by its destination:
//   - an IP address: TURN at the exit-side server, through one Tor stream and one allocation for
//     the whole association (TurnClientSession decides; this shell moves bytes);
//   - a host name: resolved by Tor (RESOLVE, cached per isolation key), then as an IP;
//   - NAME.onion:PORT: a Tor stream to that onion service carrying framed datagrams (the
//     datagram gateway's client module, injected as OnionOpener).
// All its Tor streams use one isolation (its SOCKS username, or the table's per-flow choice), so
// the association is one circuit; new streams wait for the dial pacer like TURN flows. Except, when
// the shim chose that isolation (takeHeld), the TURN stream: the one the table holds ready, on a
// fresh circuit of its own, when there is one (no circuit to build for the first datagram).
import type { Socket } from 'node:net';
import { BURST_GAP_MS, TcpBatchWriter, errorText, type TimeBound } from '@onionturn/io';
import type { TransportAddress } from '@onionturn/protocol';
import type { Clock } from './clock.js';
import type { HostPort } from './endpoints.js';
import type { FlowTable, TableFlow } from './flow-table.js';
import type { ScrubbingLogger } from './logger.js';
import type { ResolveCache } from './resolve-cache.js';
import type { SocksAuth } from './socks5-codec.js';
import { isOnionName, type SocksDestination } from './socks5-server-codec.js';
import type { DatagramDropReason, DatagramFlowKind, DatagramFlowStats, ShimStats } from './stats.js';
import { torResolve } from './tor-resolve.js';
import { MOVE_ATTEMPTS, MOVE_UNANSWERED, moveAuth } from './mobility-auth.js';
import { TurnClientSession, type SessionAction } from './turn-client-session.js';
import type { CredentialResult, CredentialSource } from './upstream-credentials.js';
import { WarnOnce } from './warn-once.js';
import { upstreamError } from './errors.js';

/** App datagrams larger than this are dropped (counted): bounds what a queue holds per datagram. */
export const MAX_APP_DATAGRAM = 16 * 1024;
/** Datagrams held per association while its TURN stream and allocation are being set up. */
const MAX_PENDING = 64;
/** Onion streams one association holds at most. */
const MAX_ONION_STREAMS = 16;
/** Host names being resolved at once per association (more are dropped until one finishes). */
const MAX_RESOLVING = 8;
const RESOLVE_TIMEOUT_MS = 30_000;
/** Bytes allowed in a Tor stream's send buffer before datagrams are dropped (as UDP would). */
const MAX_BACKLOG = 256 * 1024;
/** A closed TURN stream gets this long to flush its last Refresh before it is destroyed. */
const DESTROY_AFTER_MS = 2000;

/** The datagram gateway's client side (onion-datagram-stream.ts), as this file uses it. */
export interface OnionDatagramStreamLike {
  send(payload: Buffer): boolean;
  close(reason: string): void;
}
export type OnionOpener = (o: {
  readonly socksHost: string;
  readonly socksPort: number;
  readonly auth: SocksAuth | undefined;
  readonly host: string;
  readonly port: number;
  readonly onDatagram: (payload: Buffer) => void;
  readonly onClose: (reason: string) => void;
  readonly maxQueuedBytes?: number;
  /** The shim's clock: the stream's connect deadline runs on it. */
  readonly clock?: Clock;
}) => OnionDatagramStreamLike;

/** What an association uses of the shim's flow table. */
export type AssociationTable = Pick<FlowTable, 'openStream' | 'awaitTurn' | 'nextId' | 'addOther' | 'forgetOther' | 'now' | 'isolation' | 'full'>;

/** What every association of a shim shares. */
export interface DatagramContext {
  readonly table: AssociationTable;
  readonly clock: Clock;
  readonly logger: ScrubbingLogger;
  readonly stats: ShimStats;
  /** Drops what waited too long in the TURN stream's writer (--max-queue-delay-ms); undefined: bytes only. */
  readonly upstreamTimeBound: TimeBound | undefined;
  /** Tor's SOCKS port (RESOLVE, onion streams). */
  readonly socks: HostPort;
  /** The shim's own upstream credential source; undefined: only .onion destinations work. */
  readonly credentials: CredentialSource | undefined;
  readonly resolveCache: ResolveCache;
  readonly onion: OnionOpener | undefined;
}

/** Where a datagram for the app came from, as the app is told (SOCKS header / nothing for forwards). */
export type AppDeliver = (from: { readonly host: string; readonly port: number }, data: Buffer) => void;

export interface AssociationOptions {
  readonly kind: DatagramFlowKind;
  /** Tor stream isolation for all of this association's streams. */
  readonly auth: SocksAuth;
  /**
   * The shim chose `auth` (no SOCKS username from the app): the TURN stream may be the one the
   * table holds ready (a fresh circuit of its own, open already, its 401 asked for ahead), so the
   * first datagram skips building a circuit. An app that chose its isolation gets its own circuit.
   */
  readonly takeHeld?: boolean;
  /** Datagrams back to the app. */
  readonly deliver: AppDeliver;
  /** Called once when the association has closed (the shell closes its app side). */
  readonly onClosed: (reason: string) => void;
  /** Close after this long without datagrams either way (forwards); undefined: never (SOCKS: the control connection decides). */
  readonly idleMs?: number;
}

/** An onion destination: its stream once it had its turn, datagrams held until then. */
interface OnionEntry {
  stream: OnionDatagramStreamLike | undefined;
  waiting: Buffer[];
}

export class DatagramAssociation implements TableFlow {
  readonly id: number;
  readonly key = undefined;
  readonly #ctx: DatagramContext;
  readonly #opts: AssociationOptions;
  readonly #stats: DatagramFlowStats;
  #closed = false;
  #lastActivity: number;
  /** The TURN stream was asked for (once per association). */
  #turnStarted = false;
  #session: TurnClientSession | undefined;
  #sock: Socket | undefined;
  #writer: TcpBatchWriter | undefined;
  /** IP datagrams waiting for the TURN session. */
  #pending: { peer: TransportAddress; data: Buffer }[] = [];
  readonly #onion = new Map<string, OnionEntry>();
  #resolving = 0;
  readonly #warned = new WarnOnce<string>();
  /** Mobility: streams lost and replaced so far; when the last one was lost (clock ms). */
  #moves = 0;
  /** New streams tried by the latest take-over (counted afresh at each loss). */
  #moveAttempts = 0;
  /** The server the allocation is on: a take-over goes back there. */
  #server = -1;
  #lostAt = 0;

  constructor(ctx: DatagramContext, opts: AssociationOptions) {
    this.#ctx = ctx;
    this.#opts = opts;
    this.#stats = ctx.stats.datagramFlows[opts.kind];
    this.id = ctx.table.nextId();
    this.#lastActivity = ctx.table.now;
    this.isClosed = this.isClosed.bind(this);
  }

  /** Registers with the flow table (limit, tick, stop). */
  start(): void {
    this.#ctx.table.addOther(this);
    this.#stats.opened++;
    this.#ctx.logger.debug('datagram flow open', { flow: this.id, kind: this.#opts.kind });
  }

  isClosed(): boolean {
    return this.#closed;
  }

  /** Counts a drop of this flow's kind. */
  drop(reason: DatagramDropReason): void {
    this.#stats.dropped[reason]++;
  }

  /** An app datagram for `dest`. */
  send(dest: SocksDestination, data: Buffer): void {
    if (this.#closed) return this.drop('closed');
    if (data.length > MAX_APP_DATAGRAM) return this.drop('oversized');
    this.#lastActivity = this.#ctx.table.now;
    const a = dest.address;
    if (a.kind === 'ip') {
      this.#stats.routes.ip++;
      this.#sendIp({ family: a.family === 4 ? 'IPv4' : 'IPv6', address: a.host, port: dest.port }, data);
    } else if (isOnionName(a.host)) {
      this.#stats.routes.onion++;
      this.#sendOnion(a.host.toLowerCase().replace(/\.$/, ''), dest.port, data);
    } else {
      this.#stats.routes.hostname++;
      this.#sendName(a.host, dest.port, data);
    }
  }

  tick(now: number): void {
    if (this.#closed) return;
    const idle = this.#opts.idleMs;
    if (idle !== undefined && now - this.#lastActivity > idle) {
      this.close('idle');
      return;
    }
    if (this.#session) this.#run(this.#session.tick(now));
  }

  /** `level` warn: a failure the user should see (a refused credential, a dead stream). */
  close(reason: string, level: 'debug' | 'info' | 'warn' = 'info'): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#session) this.#run(this.#session.close(reason, this.#ctx.table.now));
    this.#teardownTurn();
    for (const e of this.#onion.values()) e.stream?.close(reason);
    this.#onion.clear();
    this.#pending = [];
    this.#stats.closed++;
    this.#ctx.table.forgetOther(this);
    this.#ctx.logger.log(level, `datagram flow closed: ${reason}`, { flow: this.id, kind: this.#opts.kind });
    this.#opts.onClosed(reason);
  }

  #warn(key: string, reason: string): void {
    if (this.#warned.first(key)) this.#ctx.logger.warn(`${reason} (said once per flow)`, { flow: this.id, kind: this.#opts.kind });
  }

  /** A datagram on its way to the server (or onion service): its kind's counts, also the status page's bytes. */
  #countUp(bytes: number): void {
    this.#stats.datagramsToUpstream++;
    this.#stats.bytesToServer += bytes;
  }

  #countDown(bytes: number): void {
    this.#stats.datagramsToApp++;
    this.#stats.bytesToApp += bytes;
  }

  /** One datagram into the TURN session, counted by what became of it. */
  #toSession(session: TurnClientSession, peer: TransportAddress, data: Buffer): void {
    const r = session.send(peer, data, this.#ctx.table.now);
    this.#run(r.actions);
    if (r.verdict === 'sent' || r.verdict === 'queued') this.#countUp(data.length);
    else if (r.verdict === 'dropped-queue') this.drop('queue-full');
    else if (r.verdict === 'dropped-peers') this.drop('too-many-peers');
    else if (r.verdict === 'dropped-refused') this.drop('peer-refused');
    else if (r.verdict === 'dropped-size') this.drop('oversized');
    else if (r.verdict === 'dropped-gap') this.drop('stream-gap');
    else this.drop('closed');
  }

  #sendIp(peer: TransportAddress, data: Buffer): void {
    const session = this.#session;
    if (session) {
      this.#toSession(session, peer, data);
      return;
    }
    if (this.#ctx.credentials === undefined) {
      this.#warn(
        'no-credentials',
        'a datagram for an IP address or host name, but the shim has no upstream credentials (--upstream-secret-file or --credentials-url): dropped',
      );
      return this.drop('no-route');
    }
    if (this.#pending.length >= MAX_PENDING) return this.drop('queue-full');
    // Counted when the session takes it (sent, or dropped for a reason), not while held.
    this.#pending.push({ peer, data: Buffer.from(data) });
    if (!this.#turnStarted) void this.#openTurn();
  }

  async #openTurn(): Promise<void> {
    this.#turnStarted = true;
    const ctx = this.#ctx;
    const source = ctx.credentials as CredentialSource;
    // The credential is fetched through the stream's isolation (the same circuit) meanwhile: the
    // association's own, or the held stream's when it takes that one.
    let credential: Promise<CredentialResult> | undefined;
    const onTurn = (auth: SocksAuth): void => {
      credential = source.obtain(auth, ctx.clock.now());
    };
    const takeHeld = this.#opts.takeHeld === true;
    const r = await ctx.table.openStream(this.id, this.isClosed, onTurn, this.#opts.auth, undefined, undefined, takeHeld);
    if (r.kind === 'abandoned') return;
    if (this.#closed) {
      if (r.kind === 'open') r.socket.destroy();
      return;
    }
    if (r.kind !== 'open') {
      if (r.kind === 'failed') ctx.stats.upstreamFailures++;
      this.close(r.kind === 'no-turn' ? 'no turn to open a Tor stream in time (--new-flows-per-second)' : `no upstream stream: ${r.error.reason}`, 'warn');
      return;
    }
    // Asked for on the stream's turn (before its dial), so there once a stream is open; awaited
    // only then (a failed dial does not wait for a fetch through Tor).
    const cred: CredentialResult = (await credential) ?? { ok: false, error: upstreamError('credentials', 'no credential was asked for') };
    if (this.#closed) {
      r.socket.destroy();
      return;
    }
    if (!cred.ok) {
      r.socket.destroy();
      ctx.stats.upstreamFailures++;
      this.close(`no upstream credential: ${cred.error.reason}`, 'warn');
      return;
    }
    const sock = r.socket;
    this.#server = r.index;
    this.#attach(sock);
    const session = new TurnClientSession({ credential: cred.value, now: ctx.table.now });
    this.#session = session;
    ctx.logger.info('datagram flow: TURN stream open', { flow: this.id, kind: this.#opts.kind, ...(r.ready ? { ready: true } : {}) });
    this.#run(session.start(ctx.table.now, r.challenge));
    const pending = this.#pending;
    this.#pending = [];
    for (const p of pending) this.#toSession(session, p.peer, p.data);
    if (r.head.length > 0) this.#run(session.fromUpstream(r.head, ctx.table.now));
    if (!this.#closed) sock.resume();
  }

  /** The TURN stream's handlers; a lost stream is replaced when the allocation can move. */
  #attach(sock: Socket): void {
    const ctx = this.#ctx;
    this.#sock = sock;
    sock.setNoDelay(true);
    this.#writer = new TcpBatchWriter(sock, MAX_BACKLOG, BURST_GAP_MS, ctx.upstreamTimeBound);
    sock.on('data', (chunk: Buffer) => {
      if (this.#session && this.#sock === sock) this.#run(this.#session.fromUpstream(chunk, ctx.table.now));
    });
    sock.on('end', () => this.#streamLost(sock, 'upstream closed the stream', 'info'));
    sock.on('close', () => this.#streamLost(sock, 'upstream closed the stream', 'info'));
    sock.on('error', (e) => this.#streamLost(sock, `upstream stream failed: ${errorText(e)}`, 'warn'));
  }

  /**
   * The TURN stream ended under the association. With a mobility ticket the allocation is taken
   * over on a new stream through a fresh circuit (RFC 8016); the app's side stays open and what
   * it sends meanwhile is dropped. Without one (or once mobility failed) the association ends.
   */
  #streamLost(sock: Socket, reason: string, level: 'info' | 'warn'): void {
    if (this.#closed || this.#sock !== sock) return;
    const session = this.#session;
    // A stream lost during a take-over (the new one died too): one more, on a fresh circuit.
    const again = session?.detached === true;
    if (!session || (again ? this.#moveAttempts >= MOVE_ATTEMPTS : !session.movable)) return this.close(reason, level);
    this.#sock = undefined;
    this.#writer = undefined;
    sock.removeAllListeners('data');
    sock.destroy();
    const ctx = this.#ctx;
    // Again: forgets the take-over's request on the stream that went (its answer will not come).
    this.#run(session.detach(ctx.table.now));
    if (again) {
      ctx.logger.log(level, `datagram flow: the take-over's new stream is gone too (${reason}): another circuit`, { flow: this.id, kind: this.#opts.kind });
    } else {
      this.#lostAt = ctx.clock.monotonic();
      this.#moveAttempts = 0;
      ctx.stats.streamsMoved++;
      ctx.logger.info(`datagram flow: ${reason}; taking the allocation over on a new circuit`, { flow: this.id, kind: this.#opts.kind });
    }
    void this.#reopen(session);
  }

  async #reopen(session: TurnClientSession): Promise<void> {
    const ctx = this.#ctx;
    const auth = moveAuth(this.#opts.auth, ++this.#moves);
    // The first try may take the stream held ready (to this server, on a circuit of its own).
    this.#moveAttempts++;
    const takeHeld = this.#opts.takeHeld === true && this.#moveAttempts === 1;
    const r = await ctx.table.openStream(this.id, this.isClosed, () => {}, auth, undefined, this.#server, takeHeld);
    if (r.kind === 'abandoned') return;
    if (this.#closed || this.#session !== session) {
      if (r.kind === 'open') r.socket.destroy();
      return;
    }
    if (r.kind !== 'open') {
      if (r.kind === 'failed') ctx.stats.upstreamFailures++;
      this.close(`mobility failed: no new Tor stream (${r.kind === 'failed' ? r.error.reason : 'no turn in time'})`, 'warn');
      return;
    }
    this.#attach(r.socket);
    // A held stream's 401 carries this connection's nonce: the take-over's Refresh needs no 438 first.
    // The precise clock, not the table's tick-old one: the take-over's deadline counts from here.
    this.#run(session.reattach(ctx.clock.monotonic(), r.challenge));
    if (r.head.length > 0) this.#run(session.fromUpstream(r.head, ctx.table.now));
    if (!this.#closed) r.socket.resume();
  }

  #run(actions: readonly SessionAction[]): void {
    for (const a of actions) {
      switch (a.kind) {
        case 'send-upstream': {
          const w = this.#writer;
          if (!w) break;
          if (!w.append(a.data, a.data.length, a.pad)) this.drop('backlog-full');
          break;
        }
        case 'deliver':
          this.#lastActivity = this.#ctx.table.now;
          this.#countDown(a.data.length);
          this.#opts.deliver({ host: a.peer.address, port: a.peer.port }, a.data);
          break;
        case 'warn':
          this.#warn(a.reason, a.reason);
          break;
        case 'move-unanswered':
          if (this.#sock) this.#streamLost(this.#sock, MOVE_UNANSWERED, 'warn');
          break;
        case 'moved':
          this.#ctx.logger.info('datagram flow: allocation taken over on a new circuit', {
            flow: this.id,
            kind: this.#opts.kind,
            gapMs: Math.round(this.#ctx.clock.monotonic() - this.#lostAt),
          });
          break;
        case 'close':
          // The session is over: so is the association (its app learns by the control connection).
          if (!this.#closed) queueMicrotask(() => this.close(a.reason, 'warn'));
          break;
      }
    }
  }

  #teardownTurn(): void {
    const sock = this.#sock;
    this.#sock = undefined;
    if (!sock) return;
    sock.removeAllListeners('data');
    sock.removeAllListeners('end');
    sock.removeAllListeners('close');
    this.#writer?.flush();
    sock.end();
    this.#ctx.clock.after(DESTROY_AFTER_MS, () => sock.destroy());
  }

  #sendName(name: string, port: number, data: Buffer): void {
    const ctx = this.#ctx;
    const isoKey = this.#opts.auth.username;
    const cached = ctx.resolveCache.get(isoKey, name, ctx.table.now);
    if (cached) {
      ctx.stats.resolveCacheHits++;
      this.#sendIp({ family: cached.family === 4 ? 'IPv4' : 'IPv6', address: cached.host, port }, data);
      return;
    }
    if (this.#resolving >= MAX_RESOLVING) return this.drop('queue-full');
    this.#resolving++;
    ctx.stats.torResolves++;
    const copy = Buffer.from(data);
    void torResolve({ proxy: ctx.socks, name, auth: this.#opts.auth, timeoutMs: RESOLVE_TIMEOUT_MS, clock: ctx.clock }).then((r) => {
      this.#resolving--;
      if (this.#closed) return;
      if (!r.ok) {
        this.#warn('resolve', `a host name could not be resolved through Tor: ${r.reason}`);
        return this.drop('resolve-failed');
      }
      ctx.resolveCache.set(isoKey, name, r.address, ctx.table.now);
      this.#sendIp({ family: r.address.family === 4 ? 'IPv4' : 'IPv6', address: r.address.host, port }, copy);
    });
  }

  #sendOnion(host: string, port: number, data: Buffer): void {
    const key = `${host}:${port}`;
    let e = this.#onion.get(key);
    if (e === undefined) {
      if (!this.#ctx.onion) {
        this.#warn('no-onion', 'a datagram for an onion service, but this build has no datagram gateway client: dropped');
        return this.drop('no-route');
      }
      if (this.#onion.size >= MAX_ONION_STREAMS) return this.drop('too-many-peers');
      e = { stream: undefined, waiting: [] };
      this.#onion.set(key, e);
      void this.#openOnion(key, host, port, e);
    }
    if (e.stream === undefined) {
      // Waiting for a turn to open the stream (the dial pacer): a few datagrams are held.
      if (e.waiting.length >= MAX_PENDING) return this.drop('queue-full');
      // Counted when the stream takes it, not while held.
      e.waiting.push(Buffer.from(data));
      return;
    }
    if (e.stream.send(data)) this.#countUp(data.length);
    else this.drop('queue-full');
  }

  async #openOnion(key: string, host: string, port: number, e: OnionEntry): Promise<void> {
    // A new Tor stream waits its turn like any flow's (--new-flows-per-second).
    const turn = await this.#ctx.table.awaitTurn(() => this.#closed || this.#onion.get(key) !== e);
    if (this.#closed || this.#onion.get(key) !== e) return;
    if (turn !== 'ok') {
      this.#onion.delete(key);
      for (let i = 0; i < e.waiting.length; i++) this.drop('queue-full');
      return;
    }
    const open = this.#ctx.onion as OnionOpener;
    const stream = open({
      socksHost: this.#ctx.socks.host,
      socksPort: this.#ctx.socks.port,
      auth: this.#opts.auth,
      host,
      port,
      clock: this.#ctx.clock,
      onDatagram: (payload) => {
        if (this.#closed) return;
        this.#lastActivity = this.#ctx.table.now;
        this.#countDown(payload.length);
        this.#opts.deliver({ host, port }, payload);
      },
      onClose: (reason) => {
        if (this.#onion.get(key) === e) this.#onion.delete(key);
        if (!this.#closed) this.#warn(`onion-closed:${reason}`, `an onion datagram stream closed: ${reason}`);
      },
    });
    e.stream = stream;
    const waiting = e.waiting;
    e.waiting = [];
    for (const d of waiting) {
      if (stream.send(d)) this.#countUp(d.length);
      else this.drop('queue-full');
    }
  }
}
