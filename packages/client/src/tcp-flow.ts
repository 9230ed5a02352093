// One app TCP connection <-> one Tor stream. Both sides already speak TURN-over-TCP, so chunks
// pass through whole after the framer has checked them (and watched for Refresh to 0). TCP
// backpressure is kept: each side pauses while the other's send buffer is full.
import type { Socket } from 'node:net';
import { FrameKind, StreamFramer, channelDataPadding } from '@onionturn/protocol';
import type { FlowContext } from './flow-context.js';
import { UpstreamFlow } from './upstream-flow.js';

export class TcpFlow extends UpstreamFlow {
  readonly kind = 'tcp' as const;
  readonly #app: Socket;
  readonly #appFramer: StreamFramer;

  constructor(ctx: FlowContext, app: Socket) {
    super(ctx);
    this.#app = app;
    // Pass-through only checks the app's framing; local mode also re-signs its STUN frames.
    this.#appFramer = new StreamFramer(this.resigner ? this.onAppFrame.bind(this) : noop, { rfc5766Channels: true });
    this.onAppData = this.onAppData.bind(this);
    this.onAppClose = this.onAppClose.bind(this);
    this.resumeApp = this.resumeApp.bind(this);
    this.resumeUpstream = this.resumeUpstream.bind(this);
  }

  start(): void {
    const app = this.#app;
    app.setNoDelay(true);
    // Nothing is read from the app until the Tor stream is up: TCP holds the data meanwhile.
    app.pause();
    app.on('data', this.onAppData);
    app.on('end', this.onAppClose);
    app.on('close', this.onAppClose);
    app.on('error', this.onAppClose);
    app.on('drain', this.resumeUpstream);
    void this.connectUpstream();
  }

  protected upstreamReady(): void {
    this.state.open();
    (this.upstream as Socket).on('drain', this.resumeApp);
    this.#app.resume();
  }

  private onAppData(chunk: Buffer): void {
    this.state.lastActivity = this.ctx.now();
    const err = this.#appFramer.push(chunk);
    if (err) {
      this.close(`app sent data that is not TURN (${err.reason})`, 'warn');
      return;
    }
    if (this.resigner) return; // frames went out one by one from onAppFrame
    const up = this.upstream as Socket;
    if (!up.write(chunk)) this.#app.pause();
  }

  private onAppFrame(frame: Buffer, kind: FrameKind): void {
    if (this.isClosed()) return;
    if (kind === FrameKind.Stun) this.perform((this.resigner as NonNullable<typeof this.resigner>).fromApp(frame, this.ctx.now()));
    else if (!writeFrame(this.upstream as Socket, frame)) this.#app.pause();
  }

  protected sendToApp(data: Buffer): void {
    if (!this.#app.write(data)) this.upstream?.pause();
  }

  protected sendToUpstream(data: Buffer): void {
    // The app is paused until the stream is open, so there is always an upstream here.
    if (!(this.upstream as Socket).write(data)) this.#app.pause();
  }

  private onAppClose(): void {
    this.close('app closed the connection');
  }

  private resumeApp(): void {
    if (this.state.phase === 'open') this.#app.resume();
  }

  private resumeUpstream(): void {
    if (this.state.phase === 'open') this.upstream?.resume();
  }

  protected deliverFrame(frame: Buffer, _kind: FrameKind): void {
    // Local mode only (pass-through forwards whole chunks in afterUpstreamChunk).
    if (this.resigner && !writeFrame(this.#app, frame)) this.upstream?.pause();
  }

  protected afterUpstreamChunk(chunk: Buffer): void {
    if (!this.resigner && !this.#app.write(chunk)) this.upstream?.pause();
  }

  protected closeApp(): void {
    const app = this.#app;
    app.removeListener('data', this.onAppData);
    app.removeListener('end', this.onAppClose);
    app.removeListener('close', this.onAppClose);
    app.removeListener('drain', this.resumeUpstream);
    app.end();
    app.destroySoon();
    setTimeout(() => app.destroy(), 2000).unref();
  }

  protected describeApp(): Record<string, string | number> {
    return this.ctx.detail ? { app: `${this.#app.remoteAddress ?? '?'}:${this.#app.remotePort ?? 0}` } : {};
  }
}

function noop(): void {}

const PAD = [Buffer.alloc(0), Buffer.alloc(1), Buffer.alloc(2), Buffer.alloc(3)] as const;

/** Writes a frame as TURN-over-TCP wants it (ChannelData padded); false when the buffer is full. */
function writeFrame(sock: Socket, frame: Buffer): boolean {
  const pad = channelDataPadding(frame.length);
  if (pad === 0) return sock.write(frame);
  sock.cork();
  sock.write(frame);
  const ok = sock.write(PAD[pad] as Buffer);
  sock.uncork();
  return ok;
}
