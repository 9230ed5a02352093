// The upstream half of a flow: dial through SOCKS, frame what the server sends, close both
// halves together. Subclasses own the app half (a UDP source or a TCP connection).
import type { Socket } from 'node:net';
import { FrameKind, StreamFramer, type TransportAddress } from '@onionturn/protocol';
import type { FlowContext, FlowHandle } from './flow-context.js';
import { FlowState } from './flow-state.js';
import { CredentialResigner, type ResignAction, type ResignWarning } from './credential-resigner.js';
import { WarnOnce } from './warn-once.js';
import type { SocksAuth } from './socks5-codec.js';

export abstract class UpstreamFlow implements FlowHandle {
  readonly id: number;
  abstract readonly kind: 'udp' | 'tcp';
  readonly state: FlowState;
  protected readonly ctx: FlowContext;
  protected upstream: Socket | undefined;
  protected readonly framer: StreamFramer;
  /** Set by a Refresh-to-0 success: close once the response is delivered. */
  protected released = false;
  /** Local-credential mode only: authenticates the app, re-signs towards upstream. */
  protected readonly resigner: CredentialResigner | undefined;
  #closeReason: string | undefined;
  #socksAuth: SocksAuth | undefined;
  #credentialObtainedAt = 0;
  #refreshing = false;
  #dialStarted = false;
  #lastRefreshAttempt = 0;
  /** Resigner warnings: each kind logged once per flow, the rest counted (see close()). */
  readonly #warnings = new WarnOnce<ResignWarning>();

  /** `app`: the app's address as the shim sees it (local mode answers Binding with it). */
  constructor(ctx: FlowContext, app: TransportAddress | undefined) {
    this.ctx = ctx;
    this.id = ctx.nextFlowId();
    this.state = new FlowState(ctx.now(), ctx.queueLimits);
    this.framer = new StreamFramer(this.onUpstreamFrame.bind(this), { rfc5766Channels: true });
    this.resigner = ctx.appAuth ? new CredentialResigner({ auth: ctx.appAuth, ...(app ? { app } : {}) }) : undefined;
    this.onUpstreamData = this.onUpstreamData.bind(this);
    this.onUpstreamEnd = this.onUpstreamEnd.bind(this);
    this.onUpstreamError = this.onUpstreamError.bind(this);
  }

  /** Opens the Tor stream; the subclass learns of it through upstreamReady(). */
  protected async connectUpstream(): Promise<void> {
    if (this.#dialStarted) return;
    this.#dialStarted = true;
    const turn = this.ctx.dialTurn(() => this.isClosed());
    if (turn !== true) {
      const ok = await turn;
      if (this.isClosed()) return;
      if (!ok) {
        this.close('no turn to open a Tor stream in time (new flows came faster than --new-flows-per-second)', 'debug');
        return;
      }
    }
    const auth = this.ctx.isolation.next();
    this.#socksAuth = auth;
    // The credential is fetched alongside the dial (through the same isolation, so the same circuit).
    if (this.resigner) void this.obtainCredential();
    const r = await this.ctx.dialer.dial(auth, this.id);
    if (this.isClosed()) {
      if (r.ok) r.socket.destroy();
      return;
    }
    if (!r.ok) {
      this.ctx.stats.upstreamFailures++;
      this.close(`no upstream stream: ${r.error.reason}`, 'warn');
      return;
    }
    const sock = r.socket;
    this.upstream = sock;
    sock.setNoDelay(true);
    sock.on('data', this.onUpstreamData);
    sock.on('end', this.onUpstreamEnd);
    sock.on('close', this.onUpstreamEnd);
    sock.on('error', this.onUpstreamError);
    const dialer = this.ctx.dialer;
    this.ctx.logger.info('flow open', { flow: this.id, kind: this.kind, upstream: dialer.serverName(dialer.servers.indexOf(r.server)), ...this.describeApp() });
    this.upstreamReady();
    if (r.head.length > 0) this.onUpstreamData(r.head);
    if (!this.isClosed()) sock.resume();
  }

  /** The Tor stream has been asked for (it may still be opening). */
  protected get dialStarted(): boolean {
    return this.#dialStarted;
  }

  protected abstract upstreamReady(): void;
  /** Local mode: a message the resigner made for the app / for upstream (STUN, no padding needed). */
  protected abstract sendToApp(data: Buffer): void;
  protected abstract sendToUpstream(data: Buffer): void;
  /** A whole frame from upstream (ChannelData without TCP padding). */
  protected abstract deliverFrame(frame: Buffer, kind: FrameKind): void;
  /** After a chunk from upstream was framed without error. */
  protected abstract afterUpstreamChunk(chunk: Buffer): void;
  protected abstract closeApp(): void;
  /** Writes what is batched for upstream now: the stream is about to be ended. */
  protected flushUpstream(): void {}
  protected abstract describeApp(): Record<string, string | number>;

  protected onUpstreamData(chunk: Buffer): void {
    this.state.lastActivity = this.ctx.now();
    const err = this.framer.push(chunk);
    if (err) {
      this.close(`upstream sent data that is not TURN (${err.reason})`, 'warn');
      return;
    }
    this.afterUpstreamChunk(chunk);
    if (this.released) this.close('allocation released (Refresh with lifetime 0)');
  }

  protected onUpstreamFrame(frame: Buffer, kind: FrameKind): void {
    if (kind === FrameKind.Stun && this.state.observeUpstreamStun(frame)) this.released = true;
    if (kind === FrameKind.Stun && this.resigner) this.perform(this.resigner.fromUpstream(frame, this.ctx.now()));
    else this.deliverFrame(frame, kind);
  }

  protected perform(actions: readonly ResignAction[]): void {
    for (const a of actions) {
      if (this.isClosed()) return;
      if (a.kind === 'to-app') this.sendToApp(a.data);
      else if (a.kind === 'to-upstream') this.sendToUpstream(a.data);
      else {
        this.ctx.stats.resignWarnings++;
        if (this.#warnings.first(a.code)) this.ctx.logger.warn(`${a.reason} (further ones on this flow are counted, not logged)`, { flow: this.id });
      }
    }
  }

  /** Local mode: a fresh upstream credential for this flow (at start, and before it expires). */
  protected async obtainCredential(): Promise<void> {
    const la = this.ctx.localAuth;
    const resigner = this.resigner;
    if (!la || !resigner || this.#refreshing) return;
    this.#refreshing = true;
    const r = await la.source.obtain(this.#socksAuth, Date.now());
    this.#refreshing = false;
    if (this.isClosed()) return;
    if (!r.ok) {
      if (resigner.hasCredential) {
        // The old one still works for a while; the next tick tries again.
        this.ctx.logger.warn(`could not refresh the upstream credential: ${r.error.reason}`, { flow: this.id });
        return;
      }
      this.ctx.stats.upstreamFailures++;
      this.close(`no upstream credential: ${r.error.reason}`, 'warn');
      return;
    }
    this.#credentialObtainedAt = Date.now();
    this.perform(resigner.setUpstreamCredential(r.value, this.ctx.now()));
  }

  maintain(now: number): void {
    const resigner = this.resigner;
    if (!resigner || this.isClosed()) return;
    resigner.tick(now);
    const expiresAt = resigner.credentialExpiresAt;
    if (expiresAt === undefined) return;
    // Refresh when a fifth of the credential's life (at most 5 minutes) is left.
    const margin = Math.min(5 * 60_000, (expiresAt - this.#credentialObtainedAt) / 5);
    if (expiresAt - now < margin && now - this.#lastRefreshAttempt > 30_000) {
      this.#lastRefreshAttempt = now;
      void this.obtainCredential();
    }
  }

  protected onUpstreamEnd(): void {
    this.close('upstream closed the stream');
  }

  protected onUpstreamError(err: Error): void {
    this.close(`upstream stream failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`, 'warn');
  }

  /** A method, so TypeScript does not narrow the phase across awaits and callbacks. */
  isClosed(): boolean {
    return this.state.phase === 'closed';
  }

  idleExpired(now: number): boolean {
    return this.state.idleExpired(now);
  }

  close(reason: string, level: 'debug' | 'info' | 'warn' = 'info'): void {
    if (this.state.phase === 'closed') return;
    this.#closeReason = reason;
    this.state.close();
    const up = this.upstream;
    if (up) {
      up.removeListener('data', this.onUpstreamData);
      up.removeListener('end', this.onUpstreamEnd);
      up.removeListener('close', this.onUpstreamEnd);
      // Keep an error listener: a late ECONNRESET must not become an uncaught exception.
      this.flushUpstream();
      up.end();
      up.destroySoon();
      setTimeout(() => up.destroy(), 2000).unref();
    }
    this.closeApp();
    this.ctx.stats.flowsClosed++;
    const suppressed = this.#warnings.suppressed;
    this.ctx.logger.log(level, `flow closed: ${reason}`, { flow: this.id, kind: this.kind, queueDropped: this.state.queueDropped, ...(suppressed > 0 ? { warningsNotLogged: suppressed } : {}) });
    this.ctx.forget(this);
  }

  get closeReason(): string | undefined {
    return this.#closeReason;
  }
}
