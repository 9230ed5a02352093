// The I/O shell of `onionturn udp-gateway`: a TCP listener (behind a HiddenServicePort) whose
// streams carry framed datagrams (datagram-framing.ts) to exactly one UDP target. One UDP socket
// per stream, connect()ed to the target, so the kernel drops datagrams from anyone else. The rules
// are in udp-gateway-session.ts.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { isIP } from 'node:net';
import { errorCode, errorText, listenOn } from '@onionturn/io';
import type { Logger } from './logger.js';
import { GatewaySession, GatewayStats, type UdpGatewayLimits } from './udp-gateway-session.js';
import { monotonicNow } from './monotonic.js';

export interface UdpGatewayOptions {
  readonly listenHost: string;
  readonly listenPort: number;
  /** An IP literal and port: the one destination. */
  readonly targetHost: string;
  readonly targetPort: number;
  readonly limits: UdpGatewayLimits;
  readonly logger: Logger;
  /** Monotonic ms (tests may pass their own). */
  readonly now?: () => number;
}

export class UdpGateway {
  readonly stats = new GatewayStats();
  readonly #opts: UdpGatewayOptions;
  readonly #now: () => number;
  readonly #server: Server;
  readonly #sessions = new Set<{ session: GatewaySession; stream: Socket; udp: UdpSocket }>();
  #sweep: NodeJS.Timeout | undefined;

  constructor(opts: UdpGatewayOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? monotonicNow;
    this.#server = createServer({ noDelay: true, pauseOnConnect: true }, (s) => this.#accept(s));
    this.#server.maxConnections = opts.limits.maxStreams;
  }

  get streams(): number {
    return this.#sessions.size;
  }

  async listen(): Promise<AddressInfo> {
    await listenOn(this.#server, { port: this.#opts.listenPort, host: this.#opts.listenHost }, (e) =>
      this.#opts.logger.error('udp-gateway listener error', { error: errorCode(e) }),
    ).catch((e: unknown) => {
      throw new Error(`cannot listen on ${this.#opts.listenHost}:${this.#opts.listenPort}: ${errorText(e as Error)}`);
    });
    // maxConnections makes Node close extra connections itself; count them.
    this.#server.on('drop', () => this.stats.streamsRefused++);
    const every = Math.max(250, Math.min(5_000, Math.floor(this.#opts.limits.idleTimeoutMs / 4)));
    this.#sweep = setInterval(() => {
      const now = this.#now();
      for (const e of this.#sessions) e.session.checkIdle(now);
    }, every);
    this.#sweep.unref();
    return this.#server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    if (this.#sweep) clearInterval(this.#sweep);
    for (const e of [...this.#sessions]) e.session.close('shutdown', 'the gateway is stopping');
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(stream: Socket): void {
    stream.on('error', () => {
      // 'close' follows; an abrupt reset is an ordinary end of a stream.
    });
    this.stats.streamsAccepted++;
    const family = isIP(this.#opts.targetHost) === 6 ? 'udp6' : 'udp4';
    const udp = createSocket(family);
    let connected = false;
    const limits = this.#opts.limits;
    const entry = {
      stream,
      udp,
      session: new GatewaySession(
        {
          toTarget: (payload) => {
            if (udp.getSendQueueSize() + payload.length > limits.maxQueuedBytes) return false;
            udp.send(payload);
            return true;
          },
          toStream: (bytes) => {
            stream.write(bytes);
          },
          streamQueued: () => stream.writableLength,
          close: (reason, detail) => {
            this.#sessions.delete(entry);
            if (reason !== 'stream-closed' && reason !== 'shutdown') this.#opts.logger.debug('udp-gateway stream closed', { reason, detail });
            stream.destroy();
            try {
              udp.close();
            } catch {
              // already closed
            }
          },
        },
        limits,
        this.stats,
        this.#now(),
      ),
    };
    this.#sessions.add(entry);
    udp.on('message', (msg) => entry.session.fromTarget(msg, this.#now()));
    // ICMP port unreachable on a connected socket: the target is down for now; keep the stream.
    udp.on('error', (e) => {
      if (!connected) entry.session.close('target', `cannot reach the target: ${errorText(e)}`);
    });
    stream.on('data', (chunk: Buffer) => entry.session.fromStream(chunk, this.#now()));
    stream.on('close', () => entry.session.close('stream-closed', 'the client closed the stream'));
    // Read the stream only once the UDP socket is connected: send() before that would fail.
    udp.connect(this.#opts.targetPort, this.#opts.targetHost, () => {
      connected = true;
      if (!entry.session.closed) stream.resume();
    });
  }
}
