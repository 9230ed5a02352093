// One stream of a datagram onion service gateway (issue 15), sans-IO: stream bytes and target
// datagrams in, calls on a sink out, time passed in. The gateway's rules live here: answer the
// client's version byte with the version both speak; hand each datagram to the one target;
// drop (and count) datagrams over the size limit or that do not fit the bounded queues; close
// the stream on broken framing or when it has been idle too long. The I/O shell (udp-gateway.ts)
// only moves bytes.
import {
  DATAGRAM_FRAME_HEADER_LENGTH,
  DatagramFrameDecoder,
  encodeDatagramFrame,
  encodeDatagramPreamble,
  negotiatedDatagramVersion,
} from '@onionturn/protocol';

export interface UdpGatewayLimits {
  /** Streams served at once; more are closed on arrival. */
  readonly maxStreams: number;
  /** Bytes queued per stream and direction (stream socket buffer; UDP send queue); beyond: drop. */
  readonly maxQueuedBytes: number;
  /** A stream with no datagram either way for this long is closed. */
  readonly idleTimeoutMs: number;
  /** Largest datagram handed to the target; longer ones are dropped (the stream stays). */
  readonly maxDatagram: number;
}

export const DEFAULT_UDP_GATEWAY_LIMITS: UdpGatewayLimits = {
  // Each stream holds a UDP socket and up to 2x maxQueuedBytes: 256 streams ~ 128 MiB worst case.
  maxStreams: 256,
  maxQueuedBytes: 256 * 1024,
  // Longer than common UDP NAT timeouts (30-120 s): an app's keepalives keep a stream alive.
  idleTimeoutMs: 180_000,
  // The largest UDP payload over IPv4 (65535 - 20 - 8).
  maxDatagram: 65_507,
};

export type GatewayCloseReason = 'framing' | 'idle' | 'target' | 'stream-closed' | 'shutdown';

/** What the session asks the shell to do. */
export interface GatewaySink {
  /** Send one datagram to the target; false if the UDP send queue is full (the session counts the drop). */
  toTarget(payload: Buffer): boolean;
  /** Write bytes to the stream. */
  toStream(bytes: Buffer): void;
  /** Bytes waiting in the stream's socket buffer. */
  streamQueued(): number;
  /** Close the stream and its UDP socket. Called once. */
  close(reason: GatewayCloseReason, detail: string): void;
}

export class GatewayStats {
  streamsAccepted = 0;
  streamsRefused = 0;
  closedFraming = 0;
  closedIdle = 0;
  datagramsToTarget = 0;
  bytesToTarget = 0;
  datagramsFromTarget = 0;
  bytesFromTarget = 0;
  droppedOversized = 0;
  droppedQueueFull = 0;
}

export class GatewaySession {
  readonly #sink: GatewaySink;
  readonly #limits: UdpGatewayLimits;
  readonly #stats: GatewayStats;
  readonly #decoder: DatagramFrameDecoder;
  #lastActivity: number;
  #closed = false;
  #answered = false;

  constructor(sink: GatewaySink, limits: UdpGatewayLimits, stats: GatewayStats, now: number) {
    this.#sink = sink;
    this.#limits = limits;
    this.#stats = stats;
    this.#lastActivity = now;
    this.#decoder = new DatagramFrameDecoder(
      {
        onVersion: (v) => {
          this.#answered = true;
          sink.toStream(encodeDatagramPreamble(negotiatedDatagramVersion(v)));
        },
        onDatagram: (p) => this.#toTarget(p),
      },
      // Any version a client offers is answered with ours; the frame format bounds a body at 64 KiB.
      { minVersion: 1, maxVersion: 255 },
    );
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes from the stream. */
  fromStream(chunk: Buffer, now: number): void {
    if (this.#closed) return;
    const err = this.#decoder.push(chunk);
    if (err) {
      this.#stats.closedFraming++;
      this.close('framing', err.reason);
      return;
    }
    if (chunk.length > 0) this.#lastActivity = now;
  }

  /** A datagram from the target (the UDP socket is connected to it, so nothing else arrives). */
  fromTarget(payload: Buffer, now: number): void {
    if (this.#closed) return;
    // Nothing goes to the stream before our version byte, i.e. before the client spoke.
    if (!this.#answered) return;
    if (this.#sink.streamQueued() + DATAGRAM_FRAME_HEADER_LENGTH + payload.length > this.#limits.maxQueuedBytes) {
      this.#stats.droppedQueueFull++;
      return;
    }
    const frame = encodeDatagramFrame(payload);
    if (frame === undefined) {
      this.#stats.droppedOversized++;
      return;
    }
    this.#sink.toStream(frame);
    this.#stats.datagramsFromTarget++;
    this.#stats.bytesFromTarget += payload.length;
    this.#lastActivity = now;
  }

  /** Closes the stream when it has been idle too long; true if it did. */
  checkIdle(now: number): boolean {
    if (this.#closed || now - this.#lastActivity < this.#limits.idleTimeoutMs) return false;
    this.#stats.closedIdle++;
    this.close('idle', `no datagram for ${Math.round((now - this.#lastActivity) / 1000)} s`);
    return true;
  }

  close(reason: GatewayCloseReason, detail: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sink.close(reason, detail);
  }

  #toTarget(payload: Buffer): void {
    if (this.#closed) return;
    if (payload.length > this.#limits.maxDatagram) {
      this.#stats.droppedOversized++;
      return;
    }
    if (!this.#sink.toTarget(payload)) {
      this.#stats.droppedQueueFull++;
      return;
    }
    this.#stats.datagramsToTarget++;
    this.#stats.bytesToTarget += payload.length;
  }
}
