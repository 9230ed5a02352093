// The TCP adapter: one app TCP connection <-> one flow. Both sides already speak TURN-over-TCP;
// the machine checks the app's framing (nothing is dialed before its first frame is known to be
// a STUN request, so a web page that fetches http://127.0.0.1:PORT costs no circuit) and this
// adapter moves the bytes, keeping TCP backpressure in both directions.
import type { Socket } from 'node:net';
import { paddingBytes } from './app-datagram.js';
import { appTransportAddress } from './binding-answer.js';
import type { Clock } from './clock.js';
import type { FlowContext } from './flow-context.js';
import { FlowDriver, type AppSide } from './flow-driver.js';
import type { ShimStats } from './stats.js';

/** Bytes queued towards a TCP app beyond which it is taken for one that never reads. */
const MAX_APP_BACKLOG = 256 * 1024;
/** A closed connection gets this long to flush before it is destroyed. */
const DESTROY_AFTER_MS = 2000;

export class TcpFlow implements AppSide {
  readonly driver: FlowDriver;
  readonly #app: Socket;
  readonly #clock: Clock;
  readonly #stats: ShimStats;

  constructor(ctx: FlowContext, app: Socket) {
    this.#app = app;
    this.#clock = ctx.clock;
    this.#stats = ctx.stats;
    this.driver = new FlowDriver(ctx, 'tcp', this, appTransportAddress(app.remoteAddress, app.remotePort), undefined);
    this.onData = this.onData.bind(this);
    this.onClose = this.onClose.bind(this);
    this.onDrain = this.onDrain.bind(this);
  }

  start(): void {
    const app = this.#app;
    app.setNoDelay(true);
    app.on('data', this.onData);
    app.on('end', this.onClose);
    app.on('close', this.onClose);
    app.on('error', this.onClose);
    app.on('drain', this.onDrain);
    this.driver.start();
    // Read the first frame now; the Tor stream is opened only once it shows a STUN request.
    app.resume();
  }

  send(data: Buffer, pad: number): void {
    // Local mode answers some requests itself (Binding, 401/438): made from the app's own bytes,
    // they would queue without bound for an app that writes and never reads. Such an app is gone.
    if (this.#app.writableLength > MAX_APP_BACKLOG) {
      this.#stats.backlogDropped++;
      this.#app.destroy(); // at once: a graceful end would wait for it to read, and read its bytes meanwhile
      this.driver.close('the app does not read what it is sent', 'debug');
      return;
    }
    const app = this.#app;
    let ok: boolean;
    if (pad === 0) ok = app.write(data);
    else {
      app.cork();
      app.write(data);
      ok = app.write(paddingBytes(pad));
      app.uncork();
    }
    if (!ok) this.driver.pauseUpstream();
  }

  forward(chunk: Buffer): void {
    if (!this.#app.write(chunk)) this.driver.pauseUpstream();
  }

  pause(): void {
    this.#app.pause();
  }

  resume(): void {
    this.#app.resume();
  }

  close(): void {
    const app = this.#app;
    app.removeListener('data', this.onData);
    app.removeListener('end', this.onClose);
    app.removeListener('close', this.onClose);
    app.removeListener('drain', this.onDrain);
    app.end();
    app.destroySoon();
    this.#clock.after(DESTROY_AFTER_MS, () => app.destroy());
  }

  describe(): Readonly<Record<string, string | number>> {
    return { app: `${this.#app.remoteAddress ?? '?'}:${this.#app.remotePort ?? 0}` };
  }

  private onData(chunk: Buffer): void {
    this.driver.fromAppBytes(chunk);
  }

  private onClose(): void {
    this.driver.appEnded();
  }

  private onDrain(): void {
    this.driver.resumeUpstream();
  }
}
