// One app TCP connection <-> one Tor stream. Both sides already speak TURN-over-TCP, so chunks
// pass through whole after the framer has checked them (and watched for Refresh to 0). TCP
// backpressure is kept: each side pauses while the other's send buffer is full.
// Nothing is dialed before the app's first frame is known to be a STUN request: a web page that
// fetches http://127.0.0.1:PORT (which parses as ChannelData) is closed without costing a circuit.
import type { Socket } from 'node:net';
import { FrameKind, StreamFramer, channelDataPadding } from '@onionturn/protocol';
import { firstFrameVerdict, paddingBytes } from './app-datagram.js';
import { appTransportAddress } from './binding-answer.js';
import type { FlowContext } from './flow-context.js';
import { UpstreamFlow } from './upstream-flow.js';

/** A connection that has not sent a whole first request within this long is closed. */
/** Bytes queued towards a TCP app beyond which it is taken for one that never reads. */
const MAX_APP_BACKLOG = 256 * 1024;
export const FIRST_REQUEST_TIMEOUT_MS = 10_000;

/** Bytes of the stream's start that decide whether it may open a Tor stream. */
const HEAD_BYTES = 8;
const EMPTY = Buffer.alloc(0);

export class TcpFlow extends UpstreamFlow {
  readonly kind = 'tcp' as const;
  readonly #app: Socket;
  readonly #appFramer: StreamFramer;
  /** The first bytes until they show a STUN request; undefined from then on. */
  #head: Buffer | undefined = EMPTY;
  /** The first frame (a STUN request) has arrived whole. */
  #sawRequest = false;
  /** Bytes for upstream while its stream is being opened (the app is paused meanwhile). */
  #held: Buffer[] = [];

  constructor(ctx: FlowContext, app: Socket) {
    super(ctx, appTransportAddress(app.remoteAddress, app.remotePort));
    this.#app = app;
    // Pass-through only checks the app's framing (and its first frame); local mode also re-signs its STUN frames.
    this.#appFramer = new StreamFramer(this.onAppFrame.bind(this), { rfc5766Channels: true });
    this.onAppData = this.onAppData.bind(this);
    this.onAppClose = this.onAppClose.bind(this);
    this.resumeApp = this.resumeApp.bind(this);
    this.resumeUpstream = this.resumeUpstream.bind(this);
  }

  start(): void {
    const app = this.#app;
    app.setNoDelay(true);
    app.on('data', this.onAppData);
    app.on('end', this.onAppClose);
    app.on('close', this.onAppClose);
    app.on('error', this.onAppClose);
    app.on('drain', this.resumeUpstream);
    // Read the first frame now; the Tor stream is opened only once it shows a STUN request.
    app.resume();
  }

  protected upstreamReady(): void {
    this.state.open();
    const up = this.upstream as Socket;
    up.on('drain', this.resumeApp);
    const held = this.#held;
    this.#held = [];
    let ok = true;
    for (const b of held) ok = up.write(b);
    if (ok) this.#app.resume();
  }

  private onAppData(chunk: Buffer): void {
    this.state.lastActivity = this.ctx.now();
    if (this.#head !== undefined && !this.#checkHead(chunk)) return;
    const err = this.#appFramer.push(chunk);
    if (this.isClosed()) return;
    if (err) {
      this.close(`app sent data that is not TURN (${err.reason})`, 'warn');
      return;
    }
    if (this.resigner) return; // frames went out one by one from onAppFrame
    if (this.state.phase === 'open') {
      if (!(this.upstream as Socket).write(chunk)) this.#app.pause();
      return;
    }
    // Before the stream is open: the first frame (perhaps still partial) and what followed it.
    this.#held.push(chunk);
    if (this.#sawRequest) this.#app.pause();
  }

  /** False (and the connection closed) when the stream's first bytes are no STUN request. */
  #checkHead(chunk: Buffer): boolean {
    const have = this.#head as Buffer;
    const head = have.length === 0 && chunk.length >= HEAD_BYTES ? chunk : Buffer.concat([have, chunk.subarray(0, HEAD_BYTES - have.length)]);
    const v = firstFrameVerdict(head);
    if (v.kind === 'refuse') {
      this.ctx.stats.appRefused++;
      // Debug only: any web page can make these, one per fetch; the counter tells the story.
      this.close(`app sent data that is not TURN (${v.reason})`, 'debug');
      return false;
    }
    this.#head = v.kind === 'wait' ? head : undefined;
    return true;
  }

  private onAppFrame(frame: Buffer, kind: FrameKind): void {
    if (this.isClosed()) return;
    if (!this.#sawRequest) {
      // #checkHead let only a STUN request through, so this first whole frame is one.
      this.#sawRequest = true;
      if (!this.resigner) void this.connectUpstream();
    }
    const resigner = this.resigner;
    if (!resigner) return;
    if (kind === FrameKind.Stun) this.perform(resigner.fromApp(frame, this.ctx.now()));
    else if (this.state.phase === 'open') {
      if (!writeFrame(this.upstream as Socket, frame)) this.#app.pause();
    } else if (this.dialStarted) this.#hold(frame);
    // No channel can exist before the app has authenticated and upstream has answered.
    else this.close('app sent ChannelData before it was authenticated', 'debug');
  }

  /** Local mode: a frame for the stream that is still being opened (padded as TCP wants). */
  #hold(frame: Buffer): void {
    this.#held.push(frame);
    const pad = channelDataPadding(frame.length);
    if (pad > 0) this.#held.push(paddingBytes(pad));
    this.#app.pause();
  }

  protected sendToApp(data: Buffer): void {
    // Local mode answers some requests itself (Binding, 401/438): made from the app's own bytes,
    // they would queue without bound for an app that writes and never reads. Such an app is gone.
    if (this.#app.writableLength > MAX_APP_BACKLOG) {
      this.ctx.stats.backlogDropped++;
      this.#app.destroy(); // at once: a graceful end would wait for it to read, and read its bytes meanwhile
      this.close('the app does not read what it is sent', 'debug');
      return;
    }
    if (!this.#app.write(data)) this.upstream?.pause();
  }

  protected sendToUpstream(data: Buffer): void {
    if (this.state.phase === 'open') {
      if (!(this.upstream as Socket).write(data)) this.#app.pause();
      return;
    }
    // Local mode: the app has authenticated (the resigner sends nothing upstream before), so
    // now the Tor stream is worth a circuit. STUN needs no padding.
    this.#held.push(data);
    this.#app.pause();
    void this.connectUpstream();
  }

  override idleExpired(now: number): boolean {
    // A connection that never sends a whole request holds a flow slot: not for long.
    if (!this.#sawRequest) return now - this.state.lastActivity > FIRST_REQUEST_TIMEOUT_MS;
    return super.idleExpired(now);
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
    this.#held = [];
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

/** Writes a frame as TURN-over-TCP wants it (ChannelData padded); false when the buffer is full. */
function writeFrame(sock: Socket, frame: Buffer): boolean {
  const pad = channelDataPadding(frame.length);
  if (pad === 0) return sock.write(frame);
  sock.cork();
  sock.write(frame);
  const ok = sock.write(paddingBytes(pad));
  sock.uncork();
  return ok;
}
