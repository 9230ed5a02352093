// One app UDP source (ip:port) <-> one Tor stream. Datagrams become TCP frames (ChannelData
// padded); TCP frames become datagrams (padding stripped by the framer). Upstream writes go
// through a TcpBatchWriter: a burst of datagrams in one event-loop turn costs one write to the
// Tor stream (and fuller Tor cells), a lone datagram is written at once. Node's dgram has no
// sendmmsg, so the other direction stays one send per datagram.
import type { Socket as UdpSocket } from 'node:dgram';
import { TcpBatchWriter } from '@onionturn/io';
import { channelDataPadding, type FrameKind } from '@onionturn/protocol';
import type { FlowContext } from './flow-context.js';
import { UpstreamFlow } from './upstream-flow.js';
import { appTransportAddress } from './binding-answer.js';

export class UdpFlow extends UpstreamFlow {
  readonly kind = 'udp' as const;
  readonly appAddress: string;
  readonly appPort: number;
  readonly #udp: UdpSocket;
  /** Set once the stream is open; every upstream write goes through it, so order is kept. */
  #out: TcpBatchWriter | undefined;

  constructor(ctx: FlowContext, udp: UdpSocket, appAddress: string, appPort: number) {
    super(ctx, appTransportAddress(appAddress, appPort));
    this.#udp = udp;
    this.appAddress = appAddress;
    this.appPort = appPort;
  }

  start(): void {
    // Local mode opens the Tor stream only once the app has authenticated (its first request
    // for upstream): a wrong password costs no circuit.
    if (!this.resigner) void this.connectUpstream();
  }

  /** An app datagram already checked by messageEnd(); `end` is its length without padding. */
  fromApp(datagram: Buffer, end: number): void {
    this.state.lastActivity = this.ctx.now();
    if (this.resigner && (datagram[0] as number) < 0x40) {
      // Local mode: STUN goes through the resigner (end === length for STUN).
      this.perform(this.resigner.fromApp(datagram, this.state.lastActivity));
      return;
    }
    if (this.state.phase === 'open') this.#write(datagram, end);
    else if (this.state.phase === 'connecting') {
      // Trim now so the queue holds exactly what will be written.
      if (!this.state.enqueue(end === datagram.length ? datagram : datagram.subarray(0, end))) this.ctx.stats.queueDropped++;
    }
  }

  #write(datagram: Buffer, end: number): void {
    // TCP wants ChannelData padded; the app may or may not have padded it (UDP leaves it optional).
    // UDP semantics when Tor is slower than the app: drop rather than buffer without bound.
    if (!(this.#out as TcpBatchWriter).append(datagram, end, channelDataPadding(end))) this.ctx.stats.backlogDropped++;
  }

  protected sendToApp(data: Buffer): void {
    this.#udp.send(data, this.appPort, this.appAddress);
  }

  protected sendToUpstream(data: Buffer): void {
    if (this.state.phase === 'open') this.#write(data, data.length);
    else if (this.state.phase === 'connecting') {
      if (!this.state.enqueue(data)) this.ctx.stats.queueDropped++;
      void this.connectUpstream();
    }
  }

  protected upstreamReady(): void {
    this.#out = new TcpBatchWriter(this.upstream as NonNullable<typeof this.upstream>, this.ctx.maxUpstreamBacklog);
    for (const d of this.state.open()) this.#write(d, d.length);
  }

  protected override flushUpstream(): void {
    this.#out?.flush();
  }

  protected deliverFrame(frame: Buffer, _kind: FrameKind): void {
    // dgram keeps a reference until sent; the framer never rewrites a frame it delivered.
    this.#udp.send(frame, this.appPort, this.appAddress);
  }

  protected afterUpstreamChunk(_chunk: Buffer): void {}

  protected closeApp(): void {}

  protected describeApp(): Record<string, string | number> {
    return this.ctx.detail ? { app: `${this.appAddress}:${this.appPort}` } : {};
  }
}
