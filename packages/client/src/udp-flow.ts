// The UDP adapter: one app source (ip:port) on the shim's UDP socket <-> one flow. It only moves
// datagrams; the flow's machine decides (datagrams become TCP frames with ChannelData padded,
// frames become datagrams with the padding stripped by the framer). Node's dgram has no sendmmsg,
// so towards the app it stays one send per datagram.
import type { Socket as UdpSocket } from 'node:dgram';
import { appTransportAddress } from './binding-answer.js';
import type { FlowContext } from './flow-context.js';
import { FlowDriver, type AppSide } from './flow-driver.js';
import { udpFlowKey } from './flow-table.js';

export class UdpFlow implements AppSide {
  readonly driver: FlowDriver;
  readonly #udp: UdpSocket;
  readonly #address: string;
  readonly #port: number;

  constructor(ctx: FlowContext, udp: UdpSocket, address: string, port: number) {
    this.#udp = udp;
    this.#address = address;
    this.#port = port;
    this.driver = new FlowDriver(ctx, 'udp', this, appTransportAddress(address, port), udpFlowKey(address, port));
  }

  send(data: Buffer, _pad: number): void {
    // dgram keeps a reference until sent; the framer never rewrites a frame it delivered.
    this.#udp.send(data, this.#port, this.#address);
  }

  forward(_chunk: Buffer): void {}

  pause(): void {}

  resume(): void {}

  close(): void {}

  describe(): Readonly<Record<string, string | number>> {
    return { app: `${this.#address}:${this.#port}` };
  }
}
