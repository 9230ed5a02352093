// The upstream half of a flow: dial through SOCKS, frame what the server sends, close both
// halves together. Subclasses own the app half (a UDP source or a TCP connection).
import type { Socket } from 'node:net';
import { FrameKind, StreamFramer } from '@onionturn/protocol';
import type { FlowContext, FlowHandle } from './flow-context.js';
import { FlowState } from './flow-state.js';

export abstract class UpstreamFlow implements FlowHandle {
  readonly id: number;
  abstract readonly kind: 'udp' | 'tcp';
  readonly state: FlowState;
  protected readonly ctx: FlowContext;
  protected upstream: Socket | undefined;
  protected readonly framer: StreamFramer;
  /** Set by a Refresh-to-0 success: close once the response is delivered. */
  protected released = false;
  #closeReason: string | undefined;

  constructor(ctx: FlowContext) {
    this.ctx = ctx;
    this.id = ctx.nextFlowId();
    this.state = new FlowState(ctx.now(), ctx.queueLimits);
    this.framer = new StreamFramer(this.onUpstreamFrame.bind(this), { rfc5766Channels: true });
    this.onUpstreamData = this.onUpstreamData.bind(this);
    this.onUpstreamEnd = this.onUpstreamEnd.bind(this);
    this.onUpstreamError = this.onUpstreamError.bind(this);
  }

  /** Opens the Tor stream; the subclass learns of it through upstreamReady(). */
  protected async connectUpstream(): Promise<void> {
    const r = await this.ctx.dialer.dial(this.ctx.isolation.next(), this.id);
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
    this.ctx.logger.info('flow open', { flow: this.id, kind: this.kind, upstream: r.server.label, ...this.describeApp() });
    this.upstreamReady();
    if (r.head.length > 0) this.onUpstreamData(r.head);
    if (!this.isClosed()) sock.resume();
  }

  protected abstract upstreamReady(): void;
  /** A whole frame from upstream (ChannelData without TCP padding). */
  protected abstract deliverFrame(frame: Buffer, kind: FrameKind): void;
  /** After a chunk from upstream was framed without error. */
  protected abstract afterUpstreamChunk(chunk: Buffer): void;
  protected abstract closeApp(): void;
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
    this.deliverFrame(frame, kind);
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

  close(reason: string, level: 'info' | 'warn' = 'info'): void {
    if (this.state.phase === 'closed') return;
    this.#closeReason = reason;
    this.state.close();
    const up = this.upstream;
    if (up) {
      up.removeListener('data', this.onUpstreamData);
      up.removeListener('end', this.onUpstreamEnd);
      up.removeListener('close', this.onUpstreamEnd);
      // Keep an error listener: a late ECONNRESET must not become an uncaught exception.
      up.end();
      up.destroySoon();
      setTimeout(() => up.destroy(), 2000).unref();
    }
    this.closeApp();
    this.ctx.stats.flowsClosed++;
    this.ctx.logger.log(level, `flow closed: ${reason}`, { flow: this.id, kind: this.kind, queueDropped: this.state.queueDropped });
    this.ctx.forget(this);
  }

  get closeReason(): string | undefined {
    return this.#closeReason;
  }
}
