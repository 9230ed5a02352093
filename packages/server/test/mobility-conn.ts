// The raw TURN-over-TCP/TLS client of the server's mobility tests (one connection, long-term
// credentials alice/wonderland), and the small helpers they share: ChannelData, error codes, the
// ticket of an answer, a UDP peer.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import {
  AttributeType,
  MessageBuilder,
  MessageClass,
  Method,
  StreamFramer,
  FrameKind,
  decodeMessage,
  getAttribute,
  longTermKey,
  readAttribute,
  readText,
  type StunMessage,
} from '@onionturn/protocol';
import { waitFor } from '@onionturn/testkit';

export const REALM = 'onionturn';
export const CHANNEL = 0x4001;
export const UDP = { kind: 'requested-transport', protocol: 17 } as const;

/** A raw TURN-over-TCP client: one connection, long-term credentials. */
export class Conn {
  readonly messages: StunMessage[] = [];
  readonly channelData: Buffer[] = [];
  closed = false;
  nonce = '';
  readonly #framer = new StreamFramer((f, kind) => {
    if (kind === FrameKind.ChannelData) return void this.channelData.push(Buffer.from(f.subarray(4)));
    const d = decodeMessage(Buffer.from(f));
    if (d.ok) this.messages.push(d.value);
  });
  private constructor(readonly sock: Socket) {
    sock.on('data', (c: Buffer) => this.#framer.push(c));
    sock.on('close', () => (this.closed = true));
    sock.on('error', () => undefined);
  }
  static async open(port: number): Promise<Conn> {
    const sock = connect(port, '127.0.0.1');
    await once(sock, 'connect');
    return new Conn(sock);
  }
  static async openTls(port: number): Promise<Conn> {
    const sock = connectTls({ port, host: '127.0.0.1', rejectUnauthorized: false });
    await once(sock, 'secureConnect');
    return new Conn(sock);
  }
  /** A request, with credentials once there is a nonce. */
  build(method: number, attrs: (b: MessageBuilder) => void): Buffer {
    const b = new MessageBuilder(method, MessageClass.Request);
    attrs(b);
    if (this.nonce) {
      b.add(AttributeType.Username, { kind: 'text', text: 'alice' })
        .add(AttributeType.Realm, { kind: 'text', text: REALM })
        .add(AttributeType.Nonce, { kind: 'text', text: this.nonce });
    }
    return b.build(this.nonce ? { integrityKey: longTermKey('alice', REALM, 'wonderland') } : {});
  }
  /** Writes `bytes` at once and waits for the answer of `method`. */
  async answerTo(method: number, bytes: Buffer): Promise<StunMessage> {
    this.sock.write(bytes);
    let r: StunMessage | undefined;
    await waitFor('a response', () => (r = this.messages.find((m) => m.method === method)) !== undefined || this.closed, 5000, 1);
    if (!r) throw new Error('connection closed');
    return r;
  }
  /** One request, answered or not: the response. */
  async once(method: number, attrs: (b: MessageBuilder) => void): Promise<StunMessage> {
    const n = this.messages.length;
    this.sock.write(this.build(method, attrs));
    await waitFor('a response', () => this.messages.length > n || this.closed, 5000, 2);
    const r = this.messages[n];
    if (!r) throw new Error('connection closed');
    return r;
  }
  /** A nonce from this connection's worker: a request without credentials gets 401. */
  async challenge(): Promise<void> {
    const r = await this.once(Method.Allocate, (b) => b.add(AttributeType.RequestedTransport, UDP));
    assert.equal(errorCode(r), 401);
    this.nonce = readText(r, AttributeType.Nonce) ?? '';
  }
  async ask(method: number, attrs: (b: MessageBuilder) => void): Promise<StunMessage> {
    if (!this.nonce) await this.challenge();
    const r = await this.once(method, attrs);
    if (errorCode(r) !== 438) return r;
    this.nonce = readText(r, AttributeType.Nonce) ?? '';
    return this.once(method, attrs);
  }
  sendChannel(data: Buffer): void {
    this.sock.write(channelData(data));
  }
}

export function channelData(data: Buffer): Buffer {
  const f = Buffer.alloc(4 + data.length + ((4 - (data.length % 4)) % 4));
  f.writeUInt16BE(CHANNEL, 0);
  f.writeUInt16BE(data.length, 2);
  data.copy(f, 4);
  return f;
}

export function errorCode(m: StunMessage): number {
  const e = readAttribute(m, AttributeType.ErrorCode);
  return e?.ok && e.value.kind === 'error-code' ? e.value.code : 0;
}

export function ticketOf(m: StunMessage): Buffer {
  const t = getAttribute(m, AttributeType.MobilityTicket);
  assert.ok(t, `no MOBILITY-TICKET (class ${m.messageClass}, error ${errorCode(m)})`);
  return Buffer.from(t.value);
}

export async function udpPeer(): Promise<{ sock: UdpSocket; got: { data: Buffer; from: string }[]; port: number }> {
  const sock = createSocket('udp4');
  const got: { data: Buffer; from: string }[] = [];
  sock.on('message', (data, r) => got.push({ data, from: `${r.address}:${r.port}` }));
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  return { sock, got, port: sock.address().port };
}
