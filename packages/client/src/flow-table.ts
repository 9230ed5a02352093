// The shim's flows and the one place that answers "which Tor stream does this flow use": the
// flow's key (an app UDP source, or a TCP connection), the flow limit, its isolation (SOCKS
// credentials, so its circuit), its turn to dial (DialPacer) and the server (ServerChoice: which
// healthy server a new flow takes, and where it fails over to). The coarse clock every flow reads is here
// too, advanced by the table's tick, so the relay path never reads the time per packet.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { HEADER_LENGTH, TRANSACTION_ID_LENGTH, WireKind, wireKindOf, type StunMessage } from '@onionturn/protocol';
import type { Clock, Timer } from './clock.js';
import { DialPacer, type DialPacerOptions } from './dial-pacer.js';
import { SourceSlots } from './dial-fairness.js';
import type { UpstreamServer } from './endpoints.js';
import type { UpstreamError } from './errors.js';
import { IsolationPolicy, type IsolationMode } from './isolation.js';
import { challengeProbe, readChallenge } from './ready-challenge.js';
import { ReadyStreamPolicy, type ReadyStreamOptions } from './ready-stream.js';
import type { DialVerdict, ServerChoice } from './server-choice.js';
import type { SocksAuth } from './socks5-codec.js';
import type { DialResult } from './upstream-dialer.js';

/** What the table needs of a flow. */
export interface TableFlow {
  readonly id: number;
  /** UDP: the app source's key (udpFlowKey); TCP: undefined. */
  readonly key: string | undefined;
  /** Who opened it, for fairness among sources (dial-fairness.ts): the app's IP address. */
  readonly source?: string;
  /** The clock's tick (idle flows close themselves, forget() follows). */
  tick(now: number): void;
  close(reason: string): void;
}

/** Bytes written to and read from the server on a stream before a flow took it (see StreamOutcome). */
export interface PriorBytes {
  readonly sent: number;
  readonly received: number;
}

export type StreamOutcome =
  /** `index`: the server's place in the list (a take-over must go back to it: pin). */
  | {
      readonly kind: 'open';
      readonly socket: Socket;
      readonly head: Buffer;
      readonly server: UpstreamServer;
      readonly index: number;
      readonly ready?: true;
      /** A held stream's: the server's 401 to an Allocate without credentials, asked for on it ahead (ready-challenge.ts). */
      readonly challenge?: StunMessage;
      /**
       * A held stream's bytes that crossed it before the flow took it, not in `head` (the challenge
       * probe and the 401): the server counts its stream from the first byte, and so must the
       * flow's delay-extension session, whose reports and acknowledgements are those totals.
       */
      readonly prior?: PriorBytes;
    }
  | { readonly kind: 'no-turn' }
  | { readonly kind: 'failed'; readonly error: UpstreamError }
  /** The flow closed while waiting: whatever was opened for it is already destroyed. */
  | { readonly kind: 'abandoned' };

export interface FlowTableOptions {
  readonly clock: Clock;
  readonly maxFlows: number;
  readonly isolation: IsolationMode;
  /** Pacing of new Tor streams; perSecond 0 is none. */
  readonly pacing: Omit<DialPacerOptions, 'clock'>;
  /** The servers and how flows choose among them; the table walks them with `connect`. */
  readonly servers: ServerChoice;
  /** Opens a Tor stream to servers[index] (UpstreamDialer.dial). */
  readonly connect: (index: number, auth: SocksAuth | undefined, flowId: number) => Promise<DialResult>;
  /** A dial to servers[index] failed; `next` is the server the flow tries now, if any. */
  readonly onDialFailed?: (flowId: number, index: number, error: UpstreamError, next: number | undefined) => void;
  /** A flow opened its stream on servers[index] after another failed. */
  readonly onFailover?: (flowId: number, index: number) => void;
  /** The tick's period; the coarse clock moves with it. */
  readonly tickMs: number;
  /** Keep one Tor stream open ahead of need while apps are active (ReadyStreamPolicy); absent: none. */
  readonly readyStream?: ReadyStreamOptions;
  /** A flow started on the held stream. */
  readonly onReadyTaken?: () => void;
  /** A stream with isolation `auth` is held ready now (local mode fetches its flow's credential ahead). */
  readonly onReadyHeld?: (auth: SocksAuth) => void;
  /** The held stream with isolation `auth` went without a flow taking it. */
  readonly onReadyDropped?: (auth: SocksAuth) => void;
}

/** A Tor stream dialed ahead of need, held until a flow takes it. */
interface HeldStream {
  readonly socket: Socket;
  /** Bytes the server sent before any request (none expected), for the flow that takes it. */
  readonly head: Buffer[];
  readonly server: UpstreamServer;
  readonly index: number;
  readonly auth: SocksAuth;
  /** Takes the table's listeners off (the flow puts its own on at once). */
  readonly release: () => void;
  /** The server's 401 on this stream (ready-challenge.ts); undefined for a server that gave none. */
  challenge?: StunMessage;
  /** Bytes of the challenge probe written, and of its answer read (taken out of `head`): what crossed the stream before a flow took it. */
  prior?: { sent: number; received: number };
}

/** The dial pacer's source for held streams (a source of their own in its fairness). */
const READY_SOURCE = 'ready-stream';

/** A held stream whose server has not answered the challenge probe within this long is dropped. */
const PROBE_TIMEOUT_MS = 10_000;

/** A held stream on which the server says this much unasked is not a TURN server's: dropped. */
const HELD_HEAD_LIMIT = 4096;

/** The key of an app UDP source. */
export function udpFlowKey(address: string, port: number): string {
  return `${address}|${port}`;
}

export class FlowTable<F extends TableFlow = TableFlow> {
  readonly isolation: IsolationPolicy;
  /** The upstream servers' health and the choice among them. */
  readonly servers: ServerChoice;
  readonly #opts: FlowTableOptions;
  readonly #pacer: DialPacer;
  /** Flow slots per source: a flood from one leaves some to the others. */
  readonly #slots: SourceSlots;
  readonly #udp = new Map<string, F>();
  readonly #tcp = new Set<F>();
  /** Flows of other kinds (SOCKS UDP associations, UDP forwards): limit, tick and stop only. */
  readonly #other = new Set<TableFlow>();
  #ids = 0;
  #now: number;
  #timer: Timer | undefined;
  readonly #readyPolicy: ReadyStreamPolicy | undefined;
  #ready: HeldStream | undefined;
  /** Dialed and waiting for the server's answer to the challenge probe; held (#ready) once it came. */
  #probing: { readonly stream: HeldStream; readonly sentAt: number } | undefined;
  /** Servers whose answer to the probe was no 401 (no authentication, say): held streams to them are not probed. */
  readonly #noChallenge = new Set<number>();
  /** The server the last flow's own stream opened on: the held stream goes there (known to answer). */
  #readyServer: number | undefined;
  #stopped = false;

  constructor(opts: FlowTableOptions) {
    this.#opts = opts;
    this.isolation = new IsolationPolicy(opts.isolation);
    this.servers = opts.servers;
    this.#pacer = new DialPacer({ ...opts.pacing, clock: opts.clock });
    this.#slots = new SourceSlots(opts.maxFlows);
    this.#now = opts.clock.monotonic();
    this.#readyPolicy = opts.readyStream ? new ReadyStreamPolicy(opts.readyStream) : undefined;
  }

  /** Whether a stream dialed ahead of need is held now. */
  get readyStreamHeld(): boolean {
    return this.#ready !== undefined;
  }

  /**
   * Coarse monotonic ms, as of the last tick: flows time idleness, lifetimes and transactions
   * with it, so a step of the wall clock neither closes them nor keeps them open.
   */
  get now(): number {
    return this.#now;
  }

  /** Flows with an app side still open. */
  get size(): number {
    return this.#udp.size + this.#tcp.size + this.#other.size;
  }

  /** Flows waiting for their turn to dial. */
  get waiting(): number {
    return this.#pacer.waiting;
  }

  get full(): boolean {
    return this.size >= this.#opts.maxFlows;
  }

  /** No slot for a new flow from `source`: the table is full, or that source holds its share. */
  fullFor(source: string): boolean {
    return this.full || this.#slots.held(source) >= this.#slots.perSource;
  }

  nextId(): number {
    return ++this.#ids;
  }

  udpFlow(key: string): F | undefined {
    return this.#udp.get(key);
  }

  add(flow: F): void {
    if (flow.source !== undefined) this.#slots.take(flow.source);
    if (flow.key === undefined) this.#tcp.add(flow);
    else this.#udp.set(flow.key, flow);
  }

  /** A flow of another kind (a datagram association): counted against the limit, ticked, stopped. */
  addOther(flow: TableFlow): void {
    this.#other.add(flow);
  }

  forgetOther(flow: TableFlow): void {
    this.#other.delete(flow);
  }

  /** Called once when a flow has closed. */
  forget(flow: F): void {
    const held = flow.key === undefined ? this.#tcp.delete(flow) : this.#udp.get(flow.key) === flow && this.#udp.delete(flow.key);
    if (held && flow.source !== undefined) this.#slots.release(flow.source);
  }

  /** Starts the tick. */
  start(): void {
    this.#timer ??= this.#opts.clock.every(this.#opts.tickMs, () => this.tick());
  }

  /** Advances the coarse clock and gives every flow its tick. */
  tick(): void {
    this.#now = this.#opts.clock.monotonic();
    for (const f of [...this.#udp.values(), ...this.#tcp, ...this.#other]) f.tick(this.#now);
    this.#tendReady(this.#now);
  }

  /** Closes every flow, ends every wait for a turn, stops the tick. */
  stop(reason: string): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#stopped = true;
    for (const held of [this.#ready, this.#probing?.stream]) {
      held?.release();
      held?.socket.destroy();
    }
    this.#dropReady();
    this.#probing = undefined;
    this.#pacer.stop();
    for (const f of [...this.#udp.values(), ...this.#tcp, ...this.#other]) f.close(reason);
  }

  /**
   * The Tor stream for a flow: waits for its turn, picks its isolation (told through `onTurn`, so
   * a credential can be fetched on the same circuit meanwhile), then dials. `isClosed` says the
   * flow no longer wants it: its turn passes on, and a stream opened for it is destroyed.
   * `takeHeld`: the held stream may serve it (see below); by default only a flow of its own.
   */
  async openStream(
    flowId: number,
    isClosed: () => boolean,
    onTurn: (auth: SocksAuth) => void,
    fixedAuth?: SocksAuth,
    source?: string,
    pin?: number,
    takeHeld: boolean = fixedAuth === undefined && pin === undefined,
  ): Promise<StreamOutcome> {
    // A flow of its own (no fixed isolation, no server it must go back to) takes the held stream;
    // a flow's take-over (mobility, `takeHeld`: pinned to its server, on a circuit other than the
    // lost one's) takes it when it goes to that server: a fresh circuit, open already.
    if (takeHeld && (pin === undefined || this.#ready?.index === pin)) {
      const held = this.#takeReady();
      if (held) {
        onTurn(held.auth);
        if (isClosed()) {
          held.socket.destroy();
          return { kind: 'abandoned' };
        }
        const challenge = held.challenge;
        return {
          kind: 'open',
          socket: held.socket,
          head: Buffer.concat(held.head),
          server: held.server,
          index: held.index,
          ready: true,
          ...(challenge ? { challenge } : {}),
          ...(held.prior ? { prior: held.prior } : {}),
        };
      }
    }
    const turn = await this.awaitTurn(isClosed, source);
    if (turn !== 'ok') return { kind: turn };
    // A datagram association keeps one isolation for all its streams (fixedAuth).
    const auth = fixedAuth ?? this.isolation.next();
    onTurn(auth);
    if (isClosed()) return { kind: 'abandoned' };
    const r = await this.#dial(auth, flowId, isClosed, pin);
    if (isClosed()) {
      if (r.ok) r.socket.destroy();
      return { kind: 'abandoned' };
    }
    if (!r.ok) return { kind: 'failed', error: r.error };
    if (pin === undefined) this.#readyServer = r.index;
    this.#tendReady(this.#opts.clock.monotonic());
    return { kind: 'open', socket: r.socket, head: r.head, server: r.server, index: r.index };
  }

  /**
   * The chosen server, then the next while dials fail (each server once per flow); with `pin`, that
   * server only (an allocation taken over with mobility lives on the server that made it).
   */
  async #dial(
    auth: SocksAuth | undefined,
    flowId: number,
    isClosed: () => boolean,
    pin?: number,
  ): Promise<(DialResult & { ok: true; index: number }) | (DialResult & { ok: false })> {
    const { servers, connect, clock } = this.#opts;
    const tried = new Set<number>();
    let index = pin ?? servers.next(tried, clock.monotonic());
    let last: UpstreamError | undefined;
    while (index !== undefined) {
      tried.add(index);
      const r = await connect(index, auth, flowId);
      if (r.ok) {
        servers.record(index, 'ok', clock.monotonic());
        if (tried.size > 1) this.#opts.onFailover?.(flowId, index);
        return { ...r, index };
      }
      last = r.error;
      servers.record(index, dialVerdict(r.error), clock.monotonic());
      // A dead SOCKS proxy fails every server alike: no point walking the list (nor for a flow gone).
      const next = pin !== undefined || r.error.code === 'socks-unreachable' || isClosed() ? undefined : servers.next(tried, clock.monotonic());
      this.#opts.onDialFailed?.(flowId, index, r.error, next);
      index = next;
    }
    return { ok: false, error: last ?? { code: 'closed', reason: 'no upstream server' } };
  }

  /** An app flow starts: the held stream if there is a fresh one; another is dialed for the next flow. */
  #takeReady(): HeldStream | undefined {
    const policy = this.#readyPolicy;
    if (!policy) return undefined;
    const now = this.#opts.clock.monotonic();
    policy.flowStarted(now);
    let held = this.#ready;
    if (held && !policy.stale(now)) {
      this.#ready = undefined;
      held.release();
      policy.released();
      this.#opts.onReadyTaken?.();
      // The next flow's, dialed now (without one held, after this flow's own stream opened).
      this.#tendReady(now);
    } else held = undefined;
    return held;
  }

  /** Lets a stale held stream go and dials one when the policy says so. */
  #tendReady(now: number): void {
    const policy = this.#readyPolicy;
    if (!policy || this.#stopped) return;
    const held = this.#ready;
    if (held && policy.stale(now)) {
      this.#dropReady();
      held.release();
      held.socket.destroy();
      policy.released();
    }
    const probing = this.#probing;
    if (probing && now - probing.sentAt >= PROBE_TIMEOUT_MS) {
      this.#probing = undefined;
      probing.stream.release();
      probing.stream.socket.destroy();
      policy.failed(now);
    }
    // Only once a flow's own stream has shown which server answers.
    if (this.#readyServer !== undefined && policy.wantDial(now)) void this.#dialReady(policy, this.#readyServer);
  }

  async #dialReady(policy: ReadyStreamPolicy, server: number): Promise<void> {
    policy.dialing();
    const clock = this.#opts.clock;
    // Paced like any new stream: a flood of flows taking held streams must not dial past the pacer.
    if ((await this.awaitTurn(() => this.#stopped, READY_SOURCE)) !== 'ok') {
      policy.failed(clock.monotonic());
      return;
    }
    const auth = this.isolation.next();
    // Not a new choice among servers: a held stream must not be the dial that tries a dead one.
    const r = await this.#dial(auth, 0, () => this.#stopped, server);
    if (!r.ok) {
      policy.failed(clock.monotonic());
      return;
    }
    const socket = r.socket;
    if (this.#stopped) {
      socket.destroy();
      return;
    }
    const head: Buffer[] = r.head.length > 0 ? [r.head] : [];
    let headBytes = r.head.length;
    // Read while held, so a stream that Tor or the server closes is noticed and not handed out.
    const gone = (): void => {
      if (this.#ready?.socket === socket) {
        this.#dropReady();
        policy.failed(clock.monotonic());
      } else if (this.#probing?.stream.socket === socket) {
        this.#probing = undefined;
        policy.failed(clock.monotonic());
      }
      socket.destroy();
    };
    const probe = this.#noChallenge.has(r.index) ? undefined : randomBytes(TRANSACTION_ID_LENGTH);
    const onData = (b: Buffer): void => {
      head.push(b);
      headBytes += b.length;
      if (headBytes > HELD_HEAD_LIMIT) gone();
      else if (this.#probing?.stream === stream) this.#onProbeAnswer(policy, stream, probe as Buffer);
    };
    const release = (): void => {
      socket.pause();
      socket.off('data', onData);
      socket.off('end', gone);
      socket.off('close', gone);
      socket.off('error', gone);
    };
    socket.on('data', onData);
    socket.once('end', gone);
    socket.once('close', gone);
    socket.on('error', gone);
    const stream: HeldStream = { socket, head, server: r.server, index: r.index, auth, release };
    if (probe) {
      this.#probing = { stream, sentAt: clock.monotonic() };
      socket.setNoDelay(true);
      const request = challengeProbe(probe);
      stream.prior = { sent: request.length, received: 0 };
      socket.write(request);
    } else this.#holdReady(policy, stream, clock.monotonic());
    socket.resume();
  }

  #holdReady(policy: ReadyStreamPolicy, stream: HeldStream, openedAt: number): void {
    this.#ready = stream;
    policy.opened(openedAt);
    this.#opts.onReadyHeld?.(stream.auth);
  }

  /** The held stream goes without a flow taking it. */
  #dropReady(): void {
    const held = this.#ready;
    this.#ready = undefined;
    if (held) this.#opts.onReadyDropped?.(held.auth);
  }

  /**
   * Bytes came on a held stream being probed: once they hold the answer, it is taken out of the
   * head; a 401 with realm and nonce makes the stream ready with it. Any other answer spoils the
   * stream (a server without authentication may have allocated on it): dropped, and that
   * server's held streams are not probed again.
   */
  #onProbeAnswer(policy: ReadyStreamPolicy, stream: HeldStream, probe: Buffer): void {
    const all = Buffer.concat(stream.head);
    if (all.length < HEADER_LENGTH) return;
    const end = HEADER_LENGTH + all.readUInt16BE(2);
    if (wireKindOf(all[0] as number) === WireKind.Stun && all.length < end) return;
    const now = this.#opts.clock.monotonic();
    // The server's deadline for a connection without an allocation runs from its connect, not from the 401.
    const openedAt = this.#probing?.sentAt ?? now;
    this.#probing = undefined;
    const challenge = wireKindOf(all[0] as number) === WireKind.Stun ? readChallenge(all.subarray(0, end), probe) : undefined;
    if (!challenge) {
      this.#noChallenge.add(stream.index);
      stream.release();
      stream.socket.destroy();
      policy.failed(now);
      return;
    }
    stream.head.length = 0;
    if (all.length > end) stream.head.push(all.subarray(end));
    stream.challenge = challenge;
    if (stream.prior) stream.prior.received = end;
    this.#holdReady(policy, stream, openedAt);
  }

  /** Waits for a turn to open a Tor stream (the dial pacer), for streams the table does not dial itself. */
  async awaitTurn(isClosed: () => boolean, source?: string): Promise<'ok' | 'no-turn' | 'abandoned'> {
    const turn = this.#pacer.turn(isClosed, source);
    if (turn === true) return 'ok';
    const ok = await turn;
    if (isClosed()) return 'abandoned';
    return ok ? 'ok' : 'no-turn';
  }
}

/** The proxy's own failures say nothing of the server; Tor's reply, a timeout or TLS do. */
function dialVerdict(e: UpstreamError): DialVerdict {
  return e.code === 'socks-unreachable' || e.code === 'socks-protocol' || e.code === 'socks-auth' ? 'unknown' : 'failed';
}
