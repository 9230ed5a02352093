// The socket shell around link-shaper.ts: a TCP proxy on loopback that forwards each accepted
// connection to one target and delivers the bytes of both directions when the core says so.
// The lab puts one in front of each tor relay's ORPort (the relay advertises the proxy's port),
// so every relay-to-relay and client-to-relay link is shaped. Backpressure: above the link's
// buffer the proxy stops reading, so a slow link slows tor down instead of growing a queue here.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { DelayLine, ShapedLink, type Bottleneck, type LinkShape } from './link-shaper.js';

export interface ShapingProxyOptions {
  readonly shape: LinkShape;
  readonly targetPort: number;
  readonly targetHost?: string;
  /** Listen address (default 127.0.0.1). */
  readonly host?: string;
  /** Listen port (default: any free one). */
  readonly port?: number;
  /** PRNG seed for jitter and stalls (default 1). */
  readonly seed?: number;
}

export interface ShapingProxy {
  readonly host: string;
  readonly port: number;
  readonly shape: LinkShape;
  /** Bytes delivered so far in each direction (up = towards the target). */
  readonly delivered: { up: number; down: number };
  /** What is queued now: bottleneck backlog per direction (ms), bytes in the delay lines and in socket write buffers, paused readers. */
  queues(): { upBacklogMs: number; downBacklogMs: number; queuedBytes: number; writeBufferedBytes: number; paused: number; connections: number };
  close(): Promise<void>;
}

const now = (): number => performance.now();
/**
 * Bytes one direction may hold (delay line + write buffer) before it stops reading, when its
 * receiver is slower than the link: small, so the backlog stays in the sender (tor, whose
 * scheduler chooses among circuits) rather than in one FIFO here shared by all of them.
 */
const HOLD_BYTES = 64 * 1024;

/** Moves one direction of one connection through a DelayLine. */
class Pump {
  readonly #line: DelayLine;
  #timer: NodeJS.Timeout | undefined;
  #paused = false;
  #blocked = false;
  #ended = false;
  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly link: ShapedLink,
    private readonly bottleneck: Bottleneck,
    private readonly count: (bytes: number) => void,
  ) {
    this.#line = new DelayLine(link, bottleneck);
    from.on('data', (chunk: Buffer) => {
      this.#line.push(now(), chunk);
      this.#arm();
      this.#maybePause();
      // The receiver is slower than the link: stop reading until it catches up, so the backlog
      // stays in the sender (tor's queues), not in a buffer of ours.
      if (!this.#blocked && this.#held() > HOLD_BYTES) {
        this.#blocked = true;
        this.from.pause();
      }
    });
    to.on('drain', () => this.#unblock());
    from.on('end', () => {
      this.#ended = true;
      this.#flush();
    });
  }

  /** Bytes read but not yet taken by the receiver's kernel buffer. */
  #held(): number {
    return this.#line.queuedBytes + this.to.writableLength;
  }

  #unblock(): void {
    if (!this.#blocked || this.#held() > HOLD_BYTES / 2) return;
    this.#blocked = false;
    if (!this.#paused && !this.from.destroyed) this.from.resume();
  }

  #maybePause(): void {
    if (this.#paused || this.bottleneck.backlogMs(now()) <= this.link.pauseAboveMs()) return;
    this.#paused = true;
    this.from.pause();
    this.#checkResume();
  }

  #checkResume(): void {
    if (!this.#paused || this.from.destroyed) return;
    const backlog = this.bottleneck.backlogMs(now());
    const resumeBelow = this.link.pauseAboveMs() / 2;
    if (backlog <= resumeBelow) {
      this.#paused = false;
      if (!this.#blocked) this.from.resume();
      return;
    }
    setTimeout(() => this.#checkResume(), Math.max(1, Math.min(50, backlog - resumeBelow))).unref();
  }

  #arm(): void {
    if (this.#timer) return;
    const at = this.#line.nextAt();
    if (at === undefined) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#flush();
      },
      Math.max(0, at - now()),
    );
  }

  #flush(): void {
    if (this.to.destroyed) return;
    const out = this.#line.due(now() + 0.5);
    if (out.length > 0) {
      const data = out.length === 1 ? out[0]! : Buffer.concat(out);
      this.count(data.length);
      this.to.write(data);
    }
    this.#unblock();
    if (this.#line.nextAt() !== undefined) this.#arm();
    else if (this.#ended) this.to.end();
  }

  get queuedBytes(): number {
    return this.#line.queuedBytes;
  }
  get paused(): boolean {
    return this.#paused;
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Starts a shaping proxy on host (default 127.0.0.1) in front of targetHost:targetPort. */
export async function startShapingProxy(options: ShapingProxyOptions): Promise<ShapingProxy> {
  const link = new ShapedLink(options.shape, options.seed ?? 1, now());
  const targetHost = options.targetHost ?? '127.0.0.1';
  const host = options.host ?? '127.0.0.1';
  const delivered = { up: 0, down: 0 };
  const sockets = new Set<Socket>();
  const pumps = new Set<Pump>();
  const server: Server = createServer((client) => {
    const target = connect({ host: targetHost, port: options.targetPort });
    client.setNoDelay(true);
    target.setNoDelay(true);
    for (const s of [client, target]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    const up = new Pump(client, target, link, link.up, (n) => (delivered.up += n));
    const down = new Pump(target, client, link, link.down, (n) => (delivered.down += n));
    pumps.add(up);
    pumps.add(down);
    const kill = (): void => {
      pumps.delete(up);
      pumps.delete(down);
      up.stop();
      down.stop();
      client.destroy();
      target.destroy();
    };
    client.on('error', kill);
    target.on('error', kill);
    client.on('close', () => setTimeout(kill, 5000).unref());
    target.on('close', () => setTimeout(kill, 5000).unref());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('shaping proxy has no address');
  let closed: Promise<void> | undefined;
  return {
    host,
    port: address.port,
    shape: options.shape,
    delivered,
    queues: () => {
      const t = now();
      let queuedBytes = 0;
      let paused = 0;
      for (const p of pumps) {
        queuedBytes += p.queuedBytes;
        if (p.paused) paused++;
      }
      let writeBufferedBytes = 0;
      for (const s of sockets) writeBufferedBytes += s.writableLength;
      return { upBacklogMs: link.up.backlogMs(t), downBacklogMs: link.down.backlogMs(t), queuedBytes, writeBufferedBytes, paused, connections: pumps.size / 2 };
    },
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      })),
  };
}
