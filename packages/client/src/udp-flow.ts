// One app UDP source (ip:port) <-> one Tor stream. Datagrams become TCP frames (ChannelData
// padded); TCP frames become datagrams (padding stripped by the framer).
import type { Socket as UdpSocket } from 'node:dgram';
import { channelDataPadding, type FrameKind } from '@onionturn/protocol';
import type { FlowContext } from './flow-context.js';
import { UpstreamFlow } from './upstream-flow.js';
import { paddingBytes } from './app-datagram.js';
import { appTransportAddress } from './binding-answer.js';

export class UdpFlow extends UpstreamFlow {
  readonly kind = 'udp' as const;
  readonly appAddress: string;
  readonly appPort: number;
  readonly #udp: UdpSocket;

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
    const up = this.upstream as NonNullable<typeof this.upstream>;
    if (up.writableLength > this.ctx.maxUpstreamBacklog) {
      // UDP semantics: drop rather than buffer without bound when Tor is slower than the app.
      this.ctx.stats.backlogDropped++;
      return;
    }
    const pad = channelDataPadding(end);
    if (end + pad === datagram.length) {
      up.write(datagram);
      return;
    }
    up.cork();
    up.write(end === datagram.length ? datagram : datagram.subarray(0, end));
    if (pad > 0) up.write(paddingBytes(pad));
    up.uncork();
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
    for (const d of this.state.open()) this.#write(d, d.length);
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
