// Runs one flow's machine against real sockets: feeds it what the app side and the Tor stream
// deliver, and carries out its actions. Everything app-specific (a UDP source or a TCP
// connection) is behind AppSide; the decisions are the machine's, the choice of stream the table's.
// The Tor stream: UDP flows write through a TcpBatchWriter (a burst of datagrams in one event-loop
// turn costs one write and fuller Tor cells; a full buffer drops, as UDP would, and so does a
// datagram that waited longer than --max-queue-delay-ms); TCP flows write directly and keep
// backpressure (each side pauses while the other's send buffer is full).
// The delay extension (issue 14): a UDP flow offers it at Allocate (local mode: the resigner;
// pass-through: the machine); each of its streams has a DelayFeedbackSession, the writer's gate (reports, the in-flight cap) once the
// server echoed it, dropped when it did not. What arrives from the server while its reports show
// more queueing than the time bound and LATE_MIN_MS (a long stall's backlog) is dropped before the
// app gets it (small media and data only: droppableOnArrival; video is relayed late).
import type { Socket } from 'node:net';
import { BURST_GAP_MS, DelayFeedbackSession, REPORT_INTERVAL_MS, STALL_MOVE_MS, TcpBatchWriter, errorText } from '@onionturn/io';
import { channelDataPadding, classifyFrame, droppableOnArrival, newFrameClass, type TransportAddress } from '@onionturn/protocol';
import { paddingBytes } from './app-datagram.js';
import { CredentialResigner } from './credential-resigner.js';
import type { FlowContext } from './flow-context.js';
import { FlowMachine, type FlowAction, type FlowKind } from './flow-machine.js';
import type { PriorBytes, StreamOutcome, TableFlow } from './flow-table.js';
import { moveAuth } from './mobility-auth.js';
import type { SocksAuth } from './socks5-codec.js';
import type { KindCounters } from './stats.js';

/** The status page's and /metrics' name of a TURN flow kind (see FLOW_KIND_LABELS). */
export function turnKindName(kind: FlowKind): string {
  return kind === 'udp' ? 'turn-udp' : 'turn-tcp';
}

/** One classification result for every flow (filled and read at once). */
const scratch = newFrameClass();

/** A closed stream or connection gets this long to flush before it is destroyed. */
const DESTROY_AFTER_MS = 2000;

/** The app half of a flow, as the driver uses it. */
export interface AppSide {
  /** Bytes for the app, then `pad` zero bytes (TCP: ChannelData padded). */
  send(data: Buffer, pad: number): void;
  /** An upstream chunk, whole (TCP pass-through). */
  forward(chunk: Buffer): void;
  pause(): void;
  resume(): void;
  close(): void;
  /** For log lines; the logger scrubs it unless detail is on. */
  describe(): Readonly<Record<string, string | number>>;
}

export class FlowDriver implements TableFlow {
  readonly id: number;
  readonly key: string | undefined;
  readonly source: string;
  readonly machine: FlowMachine;
  readonly #ctx: FlowContext;
  readonly #app: AppSide;
  #up: Socket | undefined;
  /** UDP: every upstream write goes through it, so order is kept. */
  #writer: TcpBatchWriter | undefined;
  /** TCP: the Tor stream's send buffer is full; the app stays paused until it drains. */
  #upFull = false;
  #auth: SocksAuth | undefined;
  #done = false;
  /** Mobility: streams replaced so far, and when the last one was lost (monotonic ms). */
  #moves = 0;
  #lostAt = 0;
  /** The server the flow's stream (so its allocation) is on: a take-over goes back there. */
  #server = -1;
  /** This flow's kind's counters (a reference: nothing is looked up per packet). */
  readonly #counters: KindCounters;
  /** The current stream's delay extension session (UDP flows, either mode, until the server declines it). */
  #df: DelayFeedbackSession | undefined;
  /** Runs while the negotiated stream carries data: reports, re-checks of the cap. */
  #dfTimer: NodeJS.Timeout | undefined;
  readonly #offerDelayFeedback: boolean;
  readonly #dfTick = (): void => {
    const df = this.#df;
    const w = this.#writer;
    if (df === undefined || w === undefined) return this.#stopFeedback();
    const now = performance.now();
    // Data waits, and what is in flight has had no acknowledgement for STALL_MOVE_MS: a stalled stream.
    if (w.held) {
      const stalled = df.stalledMs(now);
      if (stalled >= STALL_MOVE_MS) {
        this.#run(this.machine.upstreamStalled(stalled));
        if (this.#df !== df) return; // given up: the take-over has its own stream and session
      }
    }
    w.kick();
    if (!df.active(now) && !w.held && w.batched === 0) this.#stopFeedback();
  };

  constructor(ctx: FlowContext, kind: FlowKind, app: AppSide, appAddress: TransportAddress | undefined, key: string | undefined) {
    this.#ctx = ctx;
    this.#app = app;
    this.key = key;
    this.source = appAddress?.address ?? '';
    this.id = ctx.table.nextId();
    this.#counters = ctx.stats.kind(turnKindName(kind));
    this.#counters.opened++;
    this.#offerDelayFeedback = kind === 'udp' && ctx.delayFeedback !== undefined;
    const resigner = ctx.appAuth
      ? new CredentialResigner({ auth: ctx.appAuth, ...(appAddress ? { app: appAddress } : {}), offerDelayFeedback: this.#offerDelayFeedback })
      : undefined;
    this.machine = new FlowMachine({
      kind,
      now: ctx.table.now,
      stats: ctx.stats,
      queueLimits: ctx.queueLimits,
      resigner,
      app: appAddress,
      offerDelayFeedback: this.#offerDelayFeedback,
    });
    this.isClosed = this.isClosed.bind(this);
    this.onTurn = this.onTurn.bind(this);
    this.onUpstreamData = this.onUpstreamData.bind(this);
    this.onUpstreamEnd = this.onUpstreamEnd.bind(this);
    this.onUpstreamError = this.onUpstreamError.bind(this);
    this.resumeApp = this.resumeApp.bind(this);
  }

  start(): void {
    this.#run(this.machine.start());
  }

  isClosed(): boolean {
    return this.machine.isClosed();
  }

  /** UDP: a datagram checked by messageEnd(); `end` is its length without padding. */
  fromAppDatagram(datagram: Buffer, end: number): void {
    this.#run(this.machine.fromAppDatagram(datagram, end, this.#ctx.table.now), datagram, end);
  }

  /** TCP: a chunk from the app connection. */
  fromAppBytes(chunk: Buffer): void {
    this.#run(this.machine.fromAppBytes(chunk, this.#ctx.table.now), chunk, chunk.length);
  }

  appEnded(): void {
    this.#run(this.machine.appEnded());
  }

  tick(now: number): void {
    this.#run(this.machine.tick(now));
  }

  close(reason: string, level: 'debug' | 'info' | 'warn' = 'info'): void {
    this.#run(this.machine.close(reason, level));
  }

  /** TCP: the app's send buffer is full. */
  pauseUpstream(): void {
    this.#up?.pause();
  }

  /** TCP: the app's send buffer drained. */
  resumeUpstream(): void {
    if (this.machine.phase === 'open') this.#up?.resume();
  }

  /** `input`/`end`: what a forward action refers to (the app input or upstream chunk just given). */
  #run(actions: readonly FlowAction[], input?: Buffer, end = 0): void {
    for (let i = 0; i < actions.length; i++) {
      if (this.#done) return;
      const a = actions[i] as FlowAction;
      switch (a.kind) {
        case 'forward-upstream':
          this.#writeUp(input as Buffer, end, this.machine.kind === 'udp' ? channelDataPadding(end) : 0);
          break;
        case 'send-upstream':
          this.#writeUp(a.data, a.data.length, a.pad);
          break;
        case 'forward-app':
          this.#app.forward(input as Buffer);
          break;
        case 'send-app': {
          const df = this.#df;
          if (df !== undefined && df.late()) {
            classifyFrame(a.data, 0, a.data.length, scratch);
            if (droppableOnArrival(scratch)) {
              this.#ctx.stats.staleArrivalDropped++;
              break;
            }
          }
          this.#app.send(a.data, a.pad);
          break;
        }
        case 'delay-negotiated':
          this.#df?.negotiate(performance.now());
          this.#startFeedback();
          break;
        case 'delay-declined':
          // coturn, say: no reports, no cap, no gate on the writer.
          this.#df = undefined;
          if (this.#writer) this.#writer.gate = undefined;
          break;
        case 'delay-report':
          this.#df?.onReport(performance.now(), a.report);
          this.#writer?.kick();
          break;
        case 'pause-app':
          this.#app.pause();
          break;
        case 'resume-app':
          if (!this.#upFull) this.#app.resume();
          break;
        case 'dial':
          void this.#open();
          break;
        case 'redial':
          void this.#redial();
          break;
        case 'moved':
          this.#ctx.logger.info('flow: allocation taken over on a new circuit', {
            flow: this.id,
            kind: this.machine.kind,
            gapMs: Math.round(this.#ctx.clock.monotonic() - this.#lostAt),
          });
          break;
        case 'fetch-credential':
          void this.#fetchCredential();
          break;
        case 'warn':
          this.#ctx.logger.warn(a.reason, { flow: this.id });
          break;
        case 'close':
          this.#teardown(a.reason, a.level);
          break;
      }
    }
  }

  #writeUp(data: Buffer, end: number, pad: number): void {
    const writer = this.#writer;
    if (writer === undefined && this.#up === undefined) return; // between streams (mobility): the machine sends nothing then
    this.#counters.bytesToServer += end;
    if (writer) {
      // UDP semantics when Tor is slower than the app: drop rather than buffer without bound.
      if (!writer.append(data, end, pad)) this.#ctx.stats.backlogDropped++;
      if (this.#df !== undefined && this.#dfTimer === undefined && this.#df.negotiated) this.#startFeedback();
      return;
    }
    const up = this.#up as Socket;
    const bytes = end === data.length ? data : data.subarray(0, end);
    let ok: boolean;
    if (pad === 0) ok = up.write(bytes);
    else {
      up.cork();
      up.write(bytes);
      ok = up.write(paddingBytes(pad));
      up.uncork();
    }
    if (!ok) {
      this.#upFull = true;
      this.#app.pause();
    }
  }

  private onTurn(auth: SocksAuth): void {
    this.#auth = auth;
    this.#run(this.machine.turnGranted());
  }

  async #open(): Promise<void> {
    const r: StreamOutcome = await this.#ctx.table.openStream(this.id, this.isClosed, this.onTurn, undefined, this.source);
    if (r.kind === 'abandoned') return;
    if (r.kind === 'no-turn') {
      this.#run(this.machine.dialed(r));
      return;
    }
    if (r.kind === 'failed') {
      this.#run(this.machine.dialed({ kind: 'failed', reason: r.error.reason }));
      return;
    }
    const sock = r.socket;
    this.#server = r.index;
    this.#attach(sock, r.prior);
    this.#ctx.logger.info('flow open', {
      flow: this.id,
      kind: this.machine.kind,
      upstream: this.#ctx.serverName(r.server),
      ...(r.ready ? { ready: true } : {}),
      ...this.#app.describe(),
    });
    this.#run(this.machine.dialed({ kind: 'open', challenge: r.challenge }));
    if (r.head.length > 0) this.onUpstreamData(r.head);
    if (!this.#done) sock.resume();
  }

  /** `prior`: what crossed a held stream before this flow took it (StreamOutcome.prior). */
  #attach(sock: Socket, prior: PriorBytes | undefined): void {
    this.#up = sock;
    sock.setNoDelay(true);
    sock.on('data', this.onUpstreamData);
    sock.on('end', this.onUpstreamEnd);
    sock.on('close', this.onUpstreamEnd);
    sock.on('error', this.onUpstreamError);
    if (this.machine.kind === 'udp') {
      const writer = new TcpBatchWriter(sock, this.#ctx.maxUpstreamBacklog, BURST_GAP_MS, this.#ctx.upstreamTimeBound);
      this.#writer = writer;
      const opts = this.#ctx.delayFeedback;
      if (this.#offerDelayFeedback && opts !== undefined) {
        // Counts the stream's bytes from its first, as the server does, a held stream's challenge
        // probe and 401 included: counted from the flow's first byte instead, the server's reports
        // acknowledged 28 bytes more than we had written (the cap threw away every report that
        // acknowledged everything, and a write of 28 bytes or less could pass for acknowledged
        // before it arrived), and ours never acknowledged the 401. Reports and the cap start when
        // the server echoes the offer.
        this.#df = new DelayFeedbackSession(opts, prior?.sent ?? 0, prior?.received ?? 0);
        writer.gate = this.#df;
      }
    } else sock.on('drain', this.resumeApp);
  }

  #startFeedback(): void {
    if (this.#dfTimer !== undefined) return;
    this.#dfTimer = setInterval(this.#dfTick, REPORT_INTERVAL_MS);
    this.#dfTimer.unref();
  }

  #stopFeedback(): void {
    clearInterval(this.#dfTimer);
    this.#dfTimer = undefined;
  }

  /** Lets go of the lost stream (its listeners, then the socket). */
  #detach(): void {
    const up = this.#up;
    this.#up = undefined;
    this.#writer = undefined;
    this.#df = undefined;
    this.#stopFeedback();
    this.#upFull = false;
    if (!up) return;
    up.removeListener('data', this.onUpstreamData);
    up.removeListener('end', this.onUpstreamEnd);
    up.removeListener('close', this.onUpstreamEnd);
    up.removeListener('drain', this.resumeApp);
    // A late error of the old stream must neither end the flow nor go uncaught.
    up.removeListener('error', this.onUpstreamError);
    up.on('error', () => {});
    up.destroy();
  }

  /** Mobility: a new Tor stream on a fresh circuit (the flow's isolation, varied) for the take-over. */
  async #redial(): Promise<void> {
    this.#detach();
    this.#lostAt = this.#ctx.clock.monotonic();
    // What the app sends meanwhile is read and dropped (stale by the time a stream is back).
    if (this.machine.kind === 'tcp') this.#app.resume();
    const auth = moveAuth(this.#auth ?? { username: `onionturn-flow-${this.id}`, password: 'move' }, ++this.#moves);
    const r: StreamOutcome = await this.#ctx.table.openStream(this.id, this.isClosed, () => {}, auth, this.source, this.#server, true);
    if (r.kind === 'abandoned') return;
    if (r.kind !== 'open') {
      this.#run(this.machine.redialed(r.kind === 'failed' ? { kind: 'failed', reason: r.error.reason } : r, this.#ctx.table.now));
      return;
    }
    this.#attach(r.socket, r.prior);
    this.#ctx.logger.info('flow: new Tor stream for the allocation', {
      flow: this.id,
      kind: this.machine.kind,
      upstream: this.#ctx.serverName(r.server),
      ...(r.ready ? { ready: true } : {}),
    });
    // The precise clock, not the table's tick-old one: the take-over's deadline counts from here.
    this.#run(this.machine.redialed({ kind: 'open', challenge: r.challenge }, this.#ctx.clock.monotonic()));
    if (r.head.length > 0) this.onUpstreamData(r.head);
    if (!this.#done) r.socket.resume();
  }

  async #fetchCredential(): Promise<void> {
    const source = this.#ctx.localAuth?.source;
    if (!source) return;
    const clock = this.#ctx.clock;
    const r = await source.obtain(this.#auth, clock.now());
    // Minted and checked on the wall clock (the server's REST expiry is a wall time); the flow
    // machine runs on monotonic time, so the expiry crosses over here, once.
    const onFlowClock = r.ok ? { ok: true as const, value: { ...r.value, expiresAt: r.value.expiresAt - clock.now() + clock.monotonic() } } : r;
    this.#run(this.machine.credential(onFlowClock, clock.monotonic()));
  }

  private onUpstreamData(chunk: Buffer): void {
    this.#counters.bytesToApp += chunk.length;
    const df = this.#df;
    if (df !== undefined) {
      df.onRead(chunk.length);
      if (this.#dfTimer === undefined && df.negotiated) this.#startFeedback();
    }
    this.#run(this.machine.fromUpstream(chunk, this.#ctx.table.now), chunk, chunk.length);
  }

  private onUpstreamEnd(): void {
    this.#run(this.machine.upstreamEnded());
  }

  private onUpstreamError(err: Error): void {
    this.#run(this.machine.upstreamFailed(errorText(err)));
  }

  private resumeApp(): void {
    this.#upFull = false;
    if (this.machine.phase === 'open') this.#app.resume();
  }

  #teardown(reason: string, level: 'debug' | 'info' | 'warn'): void {
    this.#done = true;
    this.#stopFeedback();
    const up = this.#up;
    if (up) {
      up.removeListener('data', this.onUpstreamData);
      up.removeListener('end', this.onUpstreamEnd);
      up.removeListener('close', this.onUpstreamEnd);
      up.removeListener('drain', this.resumeApp);
      // Keep an error listener: a late ECONNRESET must not become an uncaught exception.
      this.#writer?.flush();
      up.end();
      up.destroySoon();
      this.#ctx.clock.after(DESTROY_AFTER_MS, () => up.destroy());
    }
    this.#app.close();
    const ctx = this.#ctx;
    ctx.stats.flowsClosed++;
    this.#counters.closed++;
    const notLogged = this.machine.warningsNotLogged;
    ctx.logger.log(level, `flow closed: ${reason}`, {
      flow: this.id,
      kind: this.machine.kind,
      queueDropped: this.machine.state.queueDropped,
      ...(notLogged > 0 ? { warningsNotLogged: notLogged } : {}),
    });
    ctx.table.forget(this);
  }
}
