// Hostile bytes over real TCP and UDP sockets: each gets the right error or a closed connection,
// and a well-behaved client on the same server keeps being served throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import {
  AttributeType,
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
import { sleep } from '@onionturn/testkit';
import { TurnServer, createLogger, parseAllowPeer, staticUsers } from '../src/index.js';

const REALM = 'malformed.test';
const KEY = longTermKey('alice', REALM, 'pw');

function code(m: StunMessage): number | undefined {
  const r = readAttribute(m, AttributeType.ErrorCode);
  return r?.ok && r.value.kind === 'error-code' ? r.value.code : undefined;
}

class TcpTalker {
  readonly messages: StunMessage[] = [];
  closed = false;
  readonly #framer = new StreamFramer((f) => {
    const d = decodeMessage(Buffer.from(f));
    if (d.ok) this.messages.push(d.value);
  });
  constructor(readonly sock: Socket) {
    sock.on('data', (c: Buffer) => this.#framer.push(c));
    sock.on('close', () => {
      this.closed = true;
    });
    sock.on('error', () => undefined);
  }
  static async open(port: number): Promise<TcpTalker> {
    const s = connect(port, '127.0.0.1');
    await once(s, 'connect');
    return new TcpTalker(s);
  }
  /** True once the server has closed the connection (at most `timeoutMs`): waits for the event, not a fixed time. */
  async closedWithin(timeoutMs = 2000): Promise<boolean> {
    if (this.closed || this.sock.destroyed) return true;
    const closed = once(this.sock, 'close').then(() => true);
    return Promise.race([closed, sleep(timeoutMs).then(() => this.closed)]);
  }

  async next(timeoutMs = 2000): Promise<StunMessage | undefined> {
    const deadline = Date.now() + timeoutMs;
    const start = this.messages.length;
    while (Date.now() < deadline && this.messages.length === start && !this.closed) await sleep(10);
    return this.messages[start];
  }
}

async function udpAsk(sock: UdpSocket, port: number, data: Buffer, timeoutMs = 500): Promise<StunMessage | undefined> {
  const got = new Promise<StunMessage | undefined>((resolve) => {
    const timer = setTimeout(() => {
      sock.off('message', on);
      resolve(undefined);
    }, timeoutMs);
    const on = (msg: Buffer): void => {
      clearTimeout(timer);
      sock.off('message', on);
      const d = decodeMessage(msg);
      resolve(d.ok ? d.value : undefined);
    };
    sock.on('message', on);
  });
  sock.send(data, port, '127.0.0.1');
  return got;
}

function binding(): Buffer {
  return new MessageBuilder(Method.Binding, MessageClass.Request).build();
}

function allocate(nonce?: string, key: Buffer = KEY, extra?: (b: MessageBuilder) => void): Buffer {
  const b = new MessageBuilder(Method.Allocate, MessageClass.Request).add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 });
  extra?.(b);
  if (nonce === undefined) return b.build();
  b.add(AttributeType.Username, { kind: 'text', text: 'alice' })
    .add(AttributeType.Realm, { kind: 'text', text: REALM })
    .add(AttributeType.Nonce, { kind: 'text', text: nonce });
  return b.build({ integrityKey: key });
}

test('malformed TCP and UDP input: right errors or closed connections, and other clients keep being served', async (t) => {
  const server = await TurnServer.start({
    listen: [
      { protocol: 'tcp', host: '127.0.0.1', port: 0 },
      { protocol: 'udp', host: '127.0.0.1', port: 0 },
    ],
    realm: REALM,
    lookup: staticUsers(new Map([['alice', 'pw']])),
    relayPorts: { min: 45000, max: 45999 },
    logger: createLogger({ level: 'error' }),
  });
  t.after(() => server.close());
  const tcpPort = server.addresses.find((a) => a.protocol === 'tcp')!.port;
  const udpPort = server.addresses.find((a) => a.protocol === 'udp')!.port;

  // A good client holds an allocation over TCP for the whole test.
  const good = await TcpTalker.open(tcpPort);
  t.after(() => good.sock.destroy());
  good.sock.write(allocate());
  const challenge = (await good.next())!;
  assert.equal(code(challenge), 401);
  const nonce = readText(challenge, AttributeType.Nonce)!;
  good.sock.write(allocate(nonce));
  const allocated = (await good.next())!;
  assert.equal(allocated.messageClass, MessageClass.SuccessResponse);
  const stillServed = async (what: string): Promise<void> => {
    good.sock.write(binding());
    const r = await good.next();
    assert.equal(r?.messageClass, MessageClass.SuccessResponse, `good client not served after ${what}`);
    assert.equal(good.closed, false);
  };

  await t.test('TCP: garbage framing closes the connection', async () => {
    // First byte 0b10/0b11: neither STUN nor ChannelData; a STUN length that is not a multiple of 4.
    for (const bytes of [
      Buffer.from([0xff, 0xff, 0xff, 0xff]),
      Buffer.from('\x80TTP/1.1 200 OK\r\n\r\n', 'latin1'),
      Buffer.from([0x00, 0x01, 0x00, 0x05, 0x21, 0x12, 0xa4, 0x42]),
    ]) {
      const c = await TcpTalker.open(tcpPort);
      c.sock.write(bytes);
      assert.equal(await c.closedWithin(), true, `not closed after ${bytes.subarray(0, 4).toString('hex')}`);
      await stillServed('garbage framing');
    }
  });

  await t.test('TCP: STUN without the magic cookie closes; so does ChannelData before any allocation', async () => {
    const noCookie = binding();
    noCookie.writeUInt32BE(0x01020304, 4);
    // "GET / HTTP/1.1": 'G' starts a ChannelData header (channel 0x4745, 0x5420 bytes), so it
    // closes once that frame is complete and turns out to come from a client without allocation.
    const http = Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n'), Buffer.alloc(0x5420)]);
    for (const bytes of [noCookie, Buffer.from([0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4]), http]) {
      const c = await TcpTalker.open(tcpPort);
      c.sock.write(bytes);
      assert.equal(await c.closedWithin(), true, bytes.subarray(0, 4).toString('hex'));
    }
    await stillServed('no cookie');
  });

  await t.test('TCP: a truncated header just waits; the rest completes it', async () => {
    const c = await TcpTalker.open(tcpPort);
    const b = binding();
    c.sock.write(b.subarray(0, 3));
    await sleep(100);
    assert.equal(c.messages.length, 0);
    c.sock.write(b.subarray(3));
    assert.equal((await c.next())?.messageClass, MessageClass.SuccessResponse);
    c.sock.destroy();
  });

  await t.test('TCP: an attribute running past the end gets 400; bad integrity 401; unknown required attribute 420', async () => {
    const c = await TcpTalker.open(tcpPort);
    const bad = Buffer.concat([binding(), Buffer.from([0x00, 0x06, 0x00, 0x40, 0, 0, 0, 0])]);
    bad.writeUInt16BE(8, 2);
    c.sock.write(bad);
    assert.equal(code((await c.next())!), 400);
    c.sock.write(allocate());
    const n = readText((await c.next())!, AttributeType.Nonce)!;
    c.sock.write(allocate(n, longTermKey('alice', REALM, 'wrong')));
    assert.equal(code((await c.next())!), 401);
    c.sock.write(allocate(n, KEY, (b) => b.addRaw(0x0031, Buffer.alloc(4))));
    const r = (await c.next())!;
    assert.equal(code(r), 420);
    const ua = readAttribute(r, AttributeType.UnknownAttributes);
    assert.ok(ua?.ok && ua.value.kind === 'unknown-attributes' && ua.value.types[0] === 0x0031);
    assert.equal(c.closed, false);
    c.sock.destroy();
    await stillServed('bad requests');
  });

  await t.test('UDP: garbage is dropped silently; broken requests get 400; bad integrity 401; the listener keeps serving', async () => {
    const u = createSocket('udp4');
    await new Promise<void>((resolve) => u.bind(0, '127.0.0.1', resolve));
    t.after(() => u.close());
    assert.equal(await udpAsk(u, udpPort, Buffer.from('hello there, not stun')), undefined);
    assert.equal(await udpAsk(u, udpPort, Buffer.from([0x00, 0x01, 0x00])), undefined, 'a truncated header is just dropped');
    const wrongLength = binding();
    wrongLength.writeUInt16BE(4, 2);
    assert.equal(code((await udpAsk(u, udpPort, wrongLength))!), 400, 'length beyond the datagram, header readable: 400');
    const bad = Buffer.concat([binding(), Buffer.from([0x00, 0x06, 0x00, 0x40, 0, 0, 0, 0])]);
    bad.writeUInt16BE(8, 2);
    assert.equal(code((await udpAsk(u, udpPort, bad))!), 400);
    const ch = (await udpAsk(u, udpPort, allocate()))!;
    const n = readText(ch, AttributeType.Nonce)!;
    assert.equal(code((await udpAsk(u, udpPort, allocate(n, longTermKey('alice', REALM, 'nope'))))!), 401);
    assert.equal(await udpAsk(u, udpPort, Buffer.from([0x40, 0x00, 0x00, 0x10, 1, 2])), undefined, 'short ChannelData is dropped');
    const ok = (await udpAsk(u, udpPort, allocate(n)))!;
    assert.equal(ok.messageClass, MessageClass.SuccessResponse);
    await stillServed('UDP abuse');
  });
});

/** An authenticated request for `method` from the TCP client that holds `nonce`. */
function signed(method: number, nonce: string, fill: (b: MessageBuilder) => void): Buffer {
  const b = new MessageBuilder(method, MessageClass.Request);
  fill(b);
  b.add(AttributeType.Username, { kind: 'text', text: 'alice' })
    .add(AttributeType.Realm, { kind: 'text', text: REALM })
    .add(AttributeType.Nonce, { kind: 'text', text: nonce });
  return b.build({ integrityKey: KEY });
}

async function allocatedTalker(tcpPort: number): Promise<{ c: TcpTalker; nonce: string; relay: StunMessage }> {
  const c = await TcpTalker.open(tcpPort);
  c.sock.write(allocate());
  const nonce = readText((await c.next())!, AttributeType.Nonce)!;
  c.sock.write(allocate(nonce));
  const relay = (await c.next())!;
  assert.equal(relay.messageClass, MessageClass.SuccessResponse);
  return { c, nonce, relay };
}

test('a peer the kernel will not connect a relay socket to (broadcast: EACCES) does not crash the server', async (t) => {
  const rule = parseAllowPeer('255.255.255.255/32');
  assert.ok(rule.ok);
  const server = await TurnServer.start({
    listen: [{ protocol: 'tcp', host: '127.0.0.1', port: 0 }],
    realm: REALM,
    lookup: staticUsers(new Map([['alice', 'pw']])),
    allowedPeers: [rule.rule],
    relayPorts: { min: 46000, max: 46999 },
    logger: createLogger({ level: 'error' }),
  });
  t.after(() => server.close());
  const tcpPort = server.addresses[0]!.port;
  const { c, nonce } = await allocatedTalker(tcpPort);
  t.after(() => c.sock.destroy());
  const bcast = { family: 'IPv4', address: '255.255.255.255', port: 9 } as const;
  c.sock.write(signed(Method.CreatePermission, nonce, (b) => b.add(AttributeType.XorPeerAddress, { kind: 'address', address: bcast })));
  assert.equal((await c.next())?.messageClass, MessageClass.SuccessResponse);
  for (let i = 0; i < 3; i++) {
    const send = new MessageBuilder(Method.Send, MessageClass.Indication)
      .add(AttributeType.XorPeerAddress, { kind: 'address', address: bcast })
      .add(AttributeType.Data, { kind: 'bytes', bytes: Buffer.from('x') })
      .build();
    c.sock.write(send);
    await sleep(30);
  }
  c.sock.write(binding());
  assert.equal((await c.next())?.messageClass, MessageClass.SuccessResponse, 'connection and server still up');
});

test('an exception inside a socket handler closes that connection or drops that datagram, never the process', async (t) => {
  const lookup = staticUsers(new Map([['alice', 'pw']]));
  const server = await TurnServer.start({
    listen: [
      { protocol: 'tcp', host: '127.0.0.1', port: 0 },
      { protocol: 'udp', host: '127.0.0.1', port: 0 },
    ],
    realm: REALM,
    // A stand-in for any bug a client's bytes can reach: the credential lookup throws.
    lookup: (name, realm, now) => {
      if (name === 'boom') throw new Error('lookup bug for 192.0.2.1');
      return lookup(name, realm, now);
    },
    relayPorts: { min: 47000, max: 47999 },
    logger: createLogger({ level: 'error' }),
  });
  t.after(() => server.close());
  const tcpPort = server.addresses.find((a) => a.protocol === 'tcp')!.port;
  const udpPort = server.addresses.find((a) => a.protocol === 'udp')!.port;
  const boom = (nonce: string): Buffer =>
    new MessageBuilder(Method.Allocate, MessageClass.Request)
      .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
      .add(AttributeType.Username, { kind: 'text', text: 'boom' })
      .add(AttributeType.Realm, { kind: 'text', text: REALM })
      .add(AttributeType.Nonce, { kind: 'text', text: nonce })
      .build({ integrityKey: KEY });
  const c = await TcpTalker.open(tcpPort);
  c.sock.write(allocate());
  const nonce = readText((await c.next())!, AttributeType.Nonce)!;
  c.sock.write(boom(nonce));
  assert.equal(await c.closedWithin(), true, 'the connection that hit the bug is closed');
  const u = createSocket('udp4');
  await new Promise<void>((resolve) => u.bind(0, '127.0.0.1', resolve));
  t.after(() => u.close());
  const n = readText((await udpAsk(u, udpPort, allocate()))!, AttributeType.Nonce)!;
  assert.equal(await udpAsk(u, udpPort, boom(n)), undefined);
  assert.equal(server.core.stats.internalErrors, 2);
  assert.equal((await udpAsk(u, udpPort, allocate(n)))?.messageClass, MessageClass.SuccessResponse, 'the UDP listener still serves');
  const { c: d } = await allocatedTalker(tcpPort);
  d.sock.destroy();
});

test('UDP: sources are remembered only once they hold an allocation (spoofed Bindings and 401s cost no state)', async (t) => {
  const server = await TurnServer.start({
    listen: [{ protocol: 'udp', host: '127.0.0.1', port: 0 }],
    realm: REALM,
    lookup: staticUsers(new Map([['alice', 'pw']])),
    relayPorts: { min: 48000, max: 48999 },
    logger: createLogger({ level: 'error' }),
  });
  t.after(() => server.close());
  const udpPort = server.addresses[0]!.port;
  const socks: UdpSocket[] = [];
  t.after(() => socks.forEach((s) => s.close()));
  for (let i = 0; i < 5; i++) {
    const u = createSocket('udp4');
    await new Promise<void>((resolve) => u.bind(0, '127.0.0.1', resolve));
    socks.push(u);
    assert.equal((await udpAsk(u, udpPort, binding()))?.messageClass, MessageClass.SuccessResponse);
    assert.equal(code((await udpAsk(u, udpPort, allocate()))!), 401);
  }
  assert.equal(server.udpClientCount, 0);
  const u = socks[0]!;
  const n = readText((await udpAsk(u, udpPort, allocate()))!, AttributeType.Nonce)!;
  assert.equal((await udpAsk(u, udpPort, allocate(n)))?.messageClass, MessageClass.SuccessResponse, 'the nonce from a throwaway client is good');
  assert.equal(server.udpClientCount, 1);
  const refresh = signed(Method.Refresh, n, () => undefined);
  assert.equal((await udpAsk(u, udpPort, refresh))?.messageClass, MessageClass.SuccessResponse, 'the allocation is found again');
  assert.equal(server.udpClientCount, 1);
});

test('TCP: a connection trickling bytes without allocating is closed at the deadline; an allocated one stays', async (t) => {
  const server = await TurnServer.start({
    listen: [{ protocol: 'tcp', host: '127.0.0.1', port: 0 }],
    realm: REALM,
    lookup: staticUsers(new Map([['alice', 'pw']])),
    relayPorts: { min: 49000, max: 49099 },
    logger: createLogger({ level: 'error' }),
    allocateDeadlineMs: 400,
  });
  t.after(() => server.close());
  const tcpPort = server.addresses[0]!.port;
  const { c: held } = await allocatedTalker(tcpPort);
  t.after(() => held.sock.destroy());
  const c = await TcpTalker.open(tcpPort);
  t.after(() => c.sock.destroy());
  // A ChannelData header promising 0x4000 bytes, then one byte every 50 ms.
  c.sock.write(Buffer.from([0x40, 0x00, 0x40, 0x00]));
  for (let i = 0; i < 16 && !c.closed; i++) {
    c.sock.write(Buffer.from([0]));
    await sleep(50);
  }
  assert.equal(c.closed, true, 'closed despite the trickle');
  held.sock.write(binding());
  assert.equal((await held.next())?.messageClass, MessageClass.SuccessResponse);
  assert.equal(held.closed, false);
  // Its allocation released, the connection gets the deadline again: trickling keeps it no longer.
  const { c: released, nonce } = await allocatedTalker(tcpPort);
  t.after(() => released.sock.destroy());
  await sleep(500); // past the first deadline, which the allocation survived
  released.sock.write(signed(Method.Refresh, nonce, (b) => b.add(AttributeType.Lifetime, { kind: 'uint32', value: 0 })));
  assert.equal((await released.next())?.messageClass, MessageClass.SuccessResponse, 'Refresh 0');
  released.sock.write(Buffer.from([0x40, 0x00, 0x40, 0x00]));
  for (let i = 0; i < 16 && !released.closed; i++) {
    released.sock.write(Buffer.from([0]));
    await sleep(50);
  }
  assert.equal(released.closed, true, 'closed at the deadline after the allocation ended');
});
