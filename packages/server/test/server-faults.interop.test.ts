// Faults a real `onionturn server` survives (issue 16): a restart with live allocations, and
// relay ports running out. Loopback only; every process is stopped by PID.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import {
  AttributeType,
  FrameKind,
  MessageBuilder,
  MessageClass,
  Method,
  StreamFramer,
  decodeMessage,
  longTermKey,
  readAttribute,
  readText,
  type StunMessage,
} from '@onionturn/protocol';
import { ProcessGroup, freePort, portRange, sleep, waitFor } from '@onionturn/testkit';
import { startServer } from './run-server.js';

const REALM = 'faults.test';
const USER = 'alice';
const PASSWORD = 'wonderland';
const ARGS = ['--realm', REALM, '--user', `${USER}:${PASSWORD}`, '--allow-loopback-peers'];

/** One TURN-over-TCP client: an authenticated allocation, a channel, ChannelData. */
class TcpTurn {
  readonly sock: Socket;
  readonly replies = new Map<string, (m: StunMessage) => void>();
  readonly channelData: Buffer[] = [];
  nonce: string | undefined;
  closed = false;

  constructor(port: number) {
    this.sock = connect({ host: '127.0.0.1', port });
    const framer = new StreamFramer((frame, kind) => {
      if (kind === FrameKind.ChannelData) return void this.channelData.push(Buffer.from(frame.subarray(4)));
      const d = decodeMessage(Buffer.from(frame));
      if (d.ok) this.replies.get(d.value.transactionId.toString('hex'))?.(d.value);
    });
    this.sock.on('data', (c: Buffer) => framer.push(c));
    this.sock.on('error', () => undefined);
    this.sock.on('close', () => (this.closed = true));
  }

  async ask(method: number, attrs: [number, Parameters<MessageBuilder['add']>[1]][]): Promise<StunMessage> {
    const send = async (): Promise<StunMessage> => {
      const b = new MessageBuilder(method, MessageClass.Request);
      for (const [t, v] of attrs) b.add(t, v);
      let msg: Buffer;
      if (this.nonce === undefined) msg = b.build();
      else {
        b.add(AttributeType.Username, { kind: 'text', text: USER }).add(AttributeType.Realm, { kind: 'text', text: REALM }).add(AttributeType.Nonce, { kind: 'text', text: this.nonce });
        msg = b.build({ integrityKey: longTermKey(USER, REALM, PASSWORD) });
      }
      const key = msg.subarray(8, 20).toString('hex');
      const reply = new Promise<StunMessage>((resolve) => this.replies.set(key, resolve));
      this.sock.write(msg);
      return Promise.race([reply, sleep(5000).then(() => Promise.reject(new Error(`no answer to method ${method}`)))]);
    };
    let res = await send();
    const code = errorCode(res);
    if (code === 401 || code === 438) {
      this.nonce = readText(res, AttributeType.Nonce);
      res = await send();
    }
    return res;
  }

  async allocate(): Promise<StunMessage> {
    return this.ask(Method.Allocate, [[AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }]]);
  }

  async relayTo(peerPort: number): Promise<void> {
    const peer = { kind: 'address' as const, address: { family: 'IPv4' as const, address: '127.0.0.1', port: peerPort } };
    assert.equal((await this.ask(Method.ChannelBind, [[AttributeType.ChannelNumber, { kind: 'channel-number', channel: 0x4000 }], [AttributeType.XorPeerAddress, peer]])).messageClass, MessageClass.SuccessResponse);
    const frame = Buffer.alloc(8);
    frame.writeUInt16BE(0x4000, 0);
    frame.writeUInt16BE(4, 2);
    frame.write('ping', 4);
    const before = this.channelData.length;
    this.sock.write(frame);
    await waitFor('the echo back through the relay', () => this.channelData.length > before, 5000, 20);
  }
}

function errorCode(msg: StunMessage): number | undefined {
  const r = readAttribute(msg, AttributeType.ErrorCode);
  return r?.ok && r.value.kind === 'error-code' ? r.value.code : undefined;
}

async function echoPeer(t: { after: (fn: () => void) => void }): Promise<UdpSocket> {
  const sock = createSocket('udp4');
  sock.on('message', (m, r) => sock.send(m, r.port, r.address));
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  t.after(() => sock.close());
  return sock;
}

async function connected(c: TcpTurn): Promise<TcpTurn> {
  await Promise.race([once(c.sock, 'connect'), sleep(5000).then(() => Promise.reject(new Error('no TCP connection')))]);
  return c;
}

test('server restarted (SIGTERM, then start) with live allocations: clients see their connections close, new allocations succeed on every relay port', async (t) => {
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const peer = await echoPeer(t);
  const tcp = await freePort();
  // Exactly as many relay ports as allocations: a port kept by the old process would fail the second round.
  const base = portRange(3);
  const relayPorts = { min: base.min, max: base.min + 2 };
  const options = { listen: [`tcp://127.0.0.1:${tcp}`], relayPorts };
  const first = await startServer(group, ARGS, {}, options);
  const clients = await Promise.all([0, 1, 2].map(() => connected(new TcpTurn(tcp))));
  for (const c of clients) assert.equal((await c.allocate()).messageClass, MessageClass.SuccessResponse);
  await clients[0]!.relayTo(peer.address().port);

  const exited = once(first.process.child, 'exit');
  first.process.child.kill('SIGTERM');
  const [code] = (await Promise.race([exited, sleep(10_000).then(() => [undefined])])) as [number | null | undefined];
  assert.equal(code, 0, `server exit: ${first.process.output()}`);
  await waitFor('every client to see its connection close', () => clients.every((c) => c.closed), 5000, 20);

  await startServer(group, ARGS, {}, options);
  const again = await Promise.all([0, 1, 2].map(() => connected(new TcpTurn(tcp))));
  t.after(() => again.forEach((c) => c.sock.destroy()));
  for (const c of again) assert.equal((await c.allocate()).messageClass, MessageClass.SuccessResponse);
  await again[2]!.relayTo(peer.address().port);
});

test('relay ports exhausted: 508 answered, no crash, allocations succeed again once ports are released', async (t) => {
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const peer = await echoPeer(t);
  const base = portRange(2);
  const server = await startServer(group, ARGS, {}, { listen: ['tcp://127.0.0.1:0'], relayPorts: { min: base.min, max: base.min + 1 } });
  const clients = await Promise.all([0, 1, 2, 3].map(() => connected(new TcpTurn(server.tcp))));
  t.after(() => clients.forEach((c) => c.sock.destroy()));
  const [a, b, c, d] = clients as [TcpTurn, TcpTurn, TcpTurn, TcpTurn];
  assert.equal((await a.allocate()).messageClass, MessageClass.SuccessResponse);
  assert.equal((await b.allocate()).messageClass, MessageClass.SuccessResponse);
  assert.equal(errorCode(await c.allocate()), 508);
  assert.equal(errorCode(await c.allocate()), 508, 'still refused, still answering');
  // The others keep relaying while the range is full.
  await a.relayTo(peer.address().port);
  // One released with Refresh lifetime 0, one by closing its connection: both ports come back.
  assert.equal((await b.ask(Method.Refresh, [[AttributeType.Lifetime, { kind: 'uint32', value: 0 }]])).messageClass, MessageClass.SuccessResponse);
  assert.equal((await c.allocate()).messageClass, MessageClass.SuccessResponse);
  a.sock.destroy();
  await waitFor('the closed allocation to free its port', async () => (await d.allocate()).messageClass === MessageClass.SuccessResponse || undefined, 5000, 100);
  await c.relayTo(peer.address().port);
  assert.equal(server.process.child.exitCode, null, 'the server is still running');
});
