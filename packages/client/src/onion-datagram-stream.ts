// The client end of a datagram onion service (issue 15): one Tor stream to NAME.onion:PORT,
// where `onionturn udp-gateway` hands each datagram to its one UDP target. Datagrams travel in
// the framing of @onionturn/protocol's datagram-framing.ts. Datagram semantics throughout:
// nothing here retries or blocks; what does not fit the bounded queue is dropped and counted.
import type { Socket } from 'node:net';
import { DATAGRAM_FRAMING_VERSION, DatagramFrameDecoder, MAX_DATAGRAM_FRAME_BODY, encodeDatagramFrame, encodeDatagramPreamble } from '@onionturn/protocol';
import { socksConnect } from './socks5-connect.js';
import type { SocksAuth } from './socks5-codec.js';
import { systemClock, type Clock } from './clock.js';

/** Bytes of datagrams (framed) held while the stream opens or while Tor is slower than the app. */
export const DEFAULT_ONION_DATAGRAM_QUEUE_BYTES = 256 * 1024;
/** Onion circuits take seconds to build (descriptor, introduction, rendezvous). */
export const DEFAULT_ONION_CONNECT_TIMEOUT_MS = 120_000;

export interface OnionDatagramStreamOptions {
  /** Tor's SOCKS port. */
  readonly socksHost: string;
  readonly socksPort: number;
  /** SOCKS username/password: Tor isolates streams with different ones (IsolateSOCKSAuth). */
  readonly auth: SocksAuth | undefined;
  /** NAME.onion and the service's virtual port (its HiddenServicePort). */
  readonly host: string;
  readonly port: number;
  /** A datagram from the service (a view; copy it to keep it past the call). */
  onDatagram(payload: Buffer): void;
  /** Called once, whatever closed the stream (close() included). The reason names no host. */
  onClose(reason: string): void;
  /** Bound on bytes waiting to go out (before open, or in the socket's buffer); beyond: drop and count. */
  readonly maxQueuedBytes?: number;
  readonly connectTimeoutMs?: number;
  readonly clock?: Clock;
}

export interface OnionDatagramStreamStats {
  state: 'opening' | 'open' | 'closed';
  datagramsSent: number;
  bytesSent: number;
  datagramsReceived: number;
  bytesReceived: number;
  /** Dropped because the queue was over maxQueuedBytes. */
  droppedQueueFull: number;
  /** Dropped because longer than a frame can say (65535 bytes). */
  droppedTooLong: number;
  /** Dropped because the stream was closed. */
  droppedClosed: number;
}

export interface OnionDatagramStream {
  /** Queues or writes one datagram; false when it was dropped (counted in stats). */
  send(payload: Buffer): boolean;
  /** Closes the stream; onClose(reason) follows unless it was already closed. */
  close(reason: string): void;
  readonly stats: Readonly<OnionDatagramStreamStats>;
}

export function openOnionDatagramStream(opts: OnionDatagramStreamOptions): OnionDatagramStream {
  const maxQueued = opts.maxQueuedBytes ?? DEFAULT_ONION_DATAGRAM_QUEUE_BYTES;
  const stats: OnionDatagramStreamStats = {
    state: 'opening',
    datagramsSent: 0,
    bytesSent: 0,
    datagramsReceived: 0,
    bytesReceived: 0,
    droppedQueueFull: 0,
    droppedTooLong: 0,
    droppedClosed: 0,
  };
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let socket: Socket | undefined;

  const finish = (reason: string): void => {
    if (stats.state === 'closed') return;
    stats.state = 'closed';
    pending = [];
    pendingBytes = 0;
    socket?.destroy();
    opts.onClose(reason);
  };

  const decoder = new DatagramFrameDecoder(
    {
      onDatagram(payload) {
        stats.datagramsReceived++;
        stats.bytesReceived += payload.length;
        opts.onDatagram(payload);
      },
    },
    // We offer our version; the gateway answers the one we both use, never a higher one.
    { minVersion: 1, maxVersion: DATAGRAM_FRAMING_VERSION },
  );

  const receive = (chunk: Buffer): void => {
    if (stats.state === 'closed') return;
    const err = decoder.push(chunk);
    if (err) finish(`the datagram gateway broke the framing: ${err.reason}`);
  };

  void socksConnect({
    proxy: { host: opts.socksHost, port: opts.socksPort },
    target: { host: opts.host, port: opts.port },
    targetName: 'the datagram onion service',
    auth: opts.auth,
    timeoutMs: opts.connectTimeoutMs ?? DEFAULT_ONION_CONNECT_TIMEOUT_MS,
    clock: opts.clock ?? systemClock,
  }).then((r) => {
    if (!r.ok) return finish(r.error.reason);
    if (stats.state === 'closed') {
      r.socket.destroy();
      return;
    }
    const s = r.socket;
    socket = s;
    stats.state = 'open';
    s.setNoDelay(true);
    s.on('data', receive);
    s.on('error', (e: NodeJS.ErrnoException) => finish(`the stream to the datagram onion service failed (${e.code ?? 'error'})`));
    s.on('close', () => finish('the datagram onion service closed the stream'));
    s.on('end', () => finish('the datagram onion service ended the stream'));
    // Preamble and queued datagrams in one write: they leave in the stream's first cells.
    const first = Buffer.concat([encodeDatagramPreamble(), ...pending]);
    pending = [];
    pendingBytes = 0;
    s.write(first);
    if (r.head.length > 0) receive(r.head);
    if (stats.state === 'open') s.resume();
  });

  return {
    stats,
    send(payload: Buffer): boolean {
      if (stats.state === 'closed') {
        stats.droppedClosed++;
        return false;
      }
      if (payload.length > MAX_DATAGRAM_FRAME_BODY) {
        stats.droppedTooLong++;
        return false;
      }
      const queued = socket ? socket.writableLength : pendingBytes;
      if (queued + payload.length > maxQueued) {
        stats.droppedQueueFull++;
        return false;
      }
      const frame = encodeDatagramFrame(payload) as Buffer;
      if (socket) socket.write(frame);
      else {
        pending.push(frame);
        pendingBytes += frame.length;
      }
      stats.datagramsSent++;
      stats.bytesSent += payload.length;
      return true;
    },
    close(reason: string): void {
      finish(reason);
    },
  };
}
