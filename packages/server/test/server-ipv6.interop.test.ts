// IPv6 relaying on real sockets: the real `onionturn server` listening on [::1] and 127.0.0.1,
// a TURN client written here on @onionturn/protocol, UDP peers on ::1 and 127.0.0.1, and coturn's
// turnutils_uclient -x with turnutils_peer on ::1. Everything stays on loopback.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { restPassword } from '@onionturn/credentials';
import {
  AttributeType,
  FrameKind,
  MAGIC_COOKIE,
  MessageBuilder,
  MessageClass,
  Method,
  StreamFramer,
  decodeChannelData,
  decodeMessage,
  encodeChannelData,
  getAttribute,
  longTermKey,
  parseIp,
  readAddressAttribute,
  readAttribute,
  readAttributes,
  readText,
  type IpFamily,
  type StunMessage,
  type TransportAddress,
} from '@onionturn/protocol';
import { listenerPort, ProcessGroup, type RunningServer, runUclient, sleep, startServer, startTurnutilsPeer, testTempDir, waitFor } from '@onionturn/testkit';
import { assertEchoed } from './uclient-asserts.js';

const REALM = 'onionturn';
const SECRET = 'ipv6-interop-secret-7c3d';
/** The listeners of a dual-stack server on loopback: TCP and UDP on ::1, TCP on 127.0.0.1. */
const DUAL_STACK = ['tcp://[::1]:0', 'udp://[::1]:0', 'tcp://127.0.0.1:0'];
/** Payload sizes: tiny, every TCP padding remainder, a typical media packet, a large datagram. */
const SIZES = [1, 2, 3, 4, 5, 161, 1200, 4093];
const WAIT_MS = 3000;
/** How long "nothing arrives" is watched for. */
const QUIET_MS = 400;

const UDP_TRANSPORT = (b: MessageBuilder): void => {
  b.add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 });
};
const requestFamily =
  (family: IpFamily) =>
  (b: MessageBuilder): void => {
    UDP_TRANSPORT(b);
    b.add(AttributeType.RequestedAddressFamily, { kind: 'family', family });
  };
const additionalIpv6 = (b: MessageBuilder): void => {
  UDP_TRANSPORT(b);
  b.add(AttributeType.AdditionalAddressFamily, { kind: 'family', family: 'IPv6' });
};

function addr(address: string, port: number): TransportAddress {
  return { family: address.includes(':') ? 'IPv6' : 'IPv4', address, port };
}

function errorCode(m: StunMessage): number | undefined {
  const e = readAttribute(m, AttributeType.ErrorCode);
  return e?.ok && e.value.kind === 'error-code' ? e.value.code : undefined;
}

function assertSuccess(m: StunMessage, what: string): void {
  assert.equal(m.messageClass, MessageClass.SuccessResponse, `${what}: error ${errorCode(m)}`);
}

function relayedAddresses(m: StunMessage): TransportAddress[] {
  return readAttributes(m, AttributeType.XorRelayedAddress).map((r) => {
    assert.ok(r.ok && r.value.kind === 'address', 'XOR-RELAYED-ADDRESS decodes');
    return r.value.address;
  });
}

/** A UDP peer socket on loopback that records every datagram it gets. */
class Peer {
  readonly got: { data: Buffer; address: string; port: number }[] = [];
  private constructor(
    readonly sock: UdpSocket,
    readonly host: string,
  ) {
    sock.on('message', (data, rinfo) => this.got.push({ data: Buffer.from(data), address: rinfo.address, port: rinfo.port }));
  }
  static async open(host: string): Promise<Peer> {
    const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => sock.bind(0, host, resolve));
    return new Peer(sock, host);
  }
  get port(): number {
    return this.sock.address().port;
  }
  get address(): TransportAddress {
    return addr(this.host, this.port);
  }
  send(data: Buffer, to: TransportAddress): void {
    this.sock.send(data, to.port, to.address);
  }
  async next(what: string): Promise<{ data: Buffer; address: string; port: number }> {
    const n = this.got.length;
    await waitFor(what, () => this.got.length > n, WAIT_MS, 5);
    return this.got[n] as { data: Buffer; address: string; port: number };
  }
  close(): void {
    this.sock.close();
  }
}

/**
 * A TURN client over TCP (framed with StreamFramer) or UDP, with REST credentials: responses are
 * matched by transaction id; Data indications and ChannelData are kept in arrival order.
 */
class TurnClient {
  readonly indications: StunMessage[] = [];
  readonly channelData: { channel: number; data: Buffer }[] = [];
  readonly #responses = new Map<string, StunMessage>();
  readonly #framer = new StreamFramer((frame, kind) => this.#receive(Buffer.from(frame), kind), { rfc5766Channels: true });
  #nonce = '';
  closed = false;

  private constructor(
    readonly transport: 'tcp' | 'udp',
    readonly write: (b: Buffer) => void,
    readonly finish: () => void,
    readonly local: TransportAddress,
    readonly username: string,
    readonly password: string,
  ) {}

  static #credentials(): { username: string; password: string } {
    const username = `${Math.floor(Date.now() / 1000) + 3600}:ipv6-${randomBytes(4).toString('hex')}`;
    return { username, password: restPassword(SECRET, username) };
  }

  static async tcp(host: string, port: number): Promise<TurnClient> {
    const sock: Socket = connect({ host, port });
    sock.on('error', () => undefined);
    await once(sock, 'connect');
    const { username, password } = TurnClient.#credentials();
    const c = new TurnClient(
      'tcp',
      (b) => sock.write(b),
      () => sock.destroy(),
      addr(sock.localAddress as string, sock.localPort as number),
      username,
      password,
    );
    sock.on('data', (chunk: Buffer) => c.#framer.push(chunk));
    sock.on('close', () => (c.closed = true));
    return c;
  }

  static async udp(host: string, port: number): Promise<TurnClient> {
    const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => sock.bind(0, host, resolve));
    const { username, password } = TurnClient.#credentials();
    const c = new TurnClient(
      'udp',
      (b) => sock.send(b, port, host),
      () => sock.close(),
      addr(host, sock.address().port),
      username,
      password,
    );
    sock.on('message', (d: Buffer) => c.#receive(Buffer.from(d), (d[0] as number) < 0x40 ? FrameKind.Stun : FrameKind.ChannelData));
    return c;
  }

  #receive(frame: Buffer, kind: FrameKind): void {
    if (kind === FrameKind.ChannelData) {
      const cd = decodeChannelData(frame);
      assert.ok(cd.ok, 'ChannelData from the server decodes');
      this.channelData.push({ channel: cd.value.channel, data: Buffer.from(cd.value.data) });
      return;
    }
    const d = decodeMessage(frame);
    assert.ok(d.ok, 'STUN from the server decodes');
    if (d.value.messageClass === MessageClass.Indication) this.indications.push(d.value);
    else this.#responses.set(d.value.transactionId.toString('hex'), d.value);
  }

  /** Sends a request (authenticated once a nonce is known; 401/438 are answered once). */
  async ask(method: number, fill: (b: MessageBuilder) => void): Promise<StunMessage> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const b = new MessageBuilder(method, MessageClass.Request);
      fill(b);
      if (this.#nonce) {
        b.add(AttributeType.Username, { kind: 'text', text: this.username })
          .add(AttributeType.Realm, { kind: 'text', text: REALM })
          .add(AttributeType.Nonce, { kind: 'text', text: this.#nonce });
      }
      const raw = b.build(this.#nonce ? { integrityKey: longTermKey(this.username, REALM, this.password), fingerprint: true } : {});
      const tid = raw.subarray(8, 20).toString('hex');
      this.write(raw);
      const r = await waitFor(`a response to method ${method}`, () => this.#responses.get(tid) ?? (this.closed ? 'closed' : undefined), WAIT_MS, 5);
      if (r === 'closed') throw new Error('connection closed');
      const code = errorCode(r);
      if ((code === 401 && !this.#nonce) || code === 438) {
        this.#nonce = readText(r, AttributeType.Nonce) ?? '';
        continue;
      }
      return r;
    }
    throw new Error('no answer after the nonce');
  }

  permit(...peers: TransportAddress[]): Promise<StunMessage> {
    return this.ask(Method.CreatePermission, (b) => {
      for (const p of peers) b.add(AttributeType.XorPeerAddress, { kind: 'address', address: p });
    });
  }

  bind(channel: number, peer: TransportAddress): Promise<StunMessage> {
    return this.ask(Method.ChannelBind, (b) => {
      b.add(AttributeType.ChannelNumber, { kind: 'channel-number', channel });
      b.add(AttributeType.XorPeerAddress, { kind: 'address', address: peer });
    });
  }

  sendIndication(peer: TransportAddress, data: Buffer): void {
    const b = new MessageBuilder(Method.Send, MessageClass.Indication)
      .add(AttributeType.XorPeerAddress, { kind: 'address', address: peer })
      .add(AttributeType.Data, { kind: 'bytes', bytes: data });
    this.write(b.build());
  }

  sendChannel(channel: number, data: Buffer): void {
    // Padded to 4 on TCP (RFC 8656 §12.5); UDP sends it unpadded.
    this.write(encodeChannelData(channel, data, this.transport === 'tcp'));
  }

  async nextIndication(what: string): Promise<StunMessage> {
    const n = this.indications.length;
    await waitFor(what, () => this.indications.length > n, WAIT_MS, 5);
    return this.indications[n] as StunMessage;
  }

  async nextChannelData(what: string): Promise<{ channel: number; data: Buffer }> {
    const n = this.channelData.length;
    await waitFor(what, () => this.channelData.length > n, WAIT_MS, 5);
    return this.channelData[n] as { channel: number; data: Buffer };
  }

  close(): void {
    this.finish();
  }
}

/** DATA and XOR-PEER-ADDRESS of a Data indication, through the codec. */
function dataIndication(m: StunMessage): { peer: TransportAddress | undefined; data: Buffer } {
  assert.equal(m.method, Method.Data, 'a Data indication');
  const d = readAttribute(m, AttributeType.Data);
  assert.ok(d?.ok && d.value.kind === 'bytes', 'DATA decodes');
  return { peer: readAddressAttribute(m, AttributeType.XorPeerAddress), data: Buffer.from(d.value.bytes) };
}

/**
 * XOR-PEER-ADDRESS decoded by hand from the raw bytes (RFC 8489 §14.2), not by the codec that
 * also encoded it: family 0x02 and a 16-byte address XOR-ed with the magic cookie and the
 * transaction id, the port with the cookie's top half.
 */
function rawXorPeerAddress(m: StunMessage): { family: number; port: number; ip: Buffer } {
  const a = getAttribute(m, AttributeType.XorPeerAddress);
  assert.ok(a, 'XOR-PEER-ADDRESS present');
  const v = a.value;
  const key = m.raw.subarray(4, 20); // cookie + transaction id
  assert.equal(key.readUInt32BE(0), MAGIC_COOKIE);
  const size = v.length - 4;
  const ip = Buffer.alloc(size);
  for (let i = 0; i < size; i++) ip[i] = (v[4 + i] as number) ^ (key[i] as number);
  return { family: v[1] as number, port: v.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16), ip };
}

/** One Send → peer → Data round trip, byte-exact both ways. */
async function roundTripIndication(c: TurnClient, peer: Peer, relayed: TransportAddress, size: number): Promise<StunMessage> {
  const out = randomBytes(size);
  c.sendIndication(peer.address, out);
  const got = await peer.next(`${size} bytes at the ${peer.host} peer (Send)`);
  assert.deepEqual(got.data, out, `Send ${size} bytes: byte-exact at the peer`);
  assert.deepEqual({ address: got.address, port: got.port }, { address: relayed.address, port: relayed.port }, 'from the relayed address');
  const back = randomBytes(size);
  peer.send(back, relayed);
  const ind = await c.nextIndication(`${size} bytes back from the ${peer.host} peer (Data)`);
  const { peer: from, data } = dataIndication(ind);
  assert.deepEqual(from, peer.address, 'XOR-PEER-ADDRESS names the peer');
  assert.deepEqual(data, back, `Data ${size} bytes: byte-exact at the client`);
  return ind;
}

/** One ChannelData round trip, byte-exact both ways. */
async function roundTripChannel(c: TurnClient, channel: number, peer: Peer, relayed: TransportAddress, size: number): Promise<void> {
  const out = randomBytes(size);
  c.sendChannel(channel, out);
  const got = await peer.next(`${size} bytes at the ${peer.host} peer (ChannelData)`);
  assert.deepEqual(got.data, out, `ChannelData ${size} bytes: byte-exact at the peer`);
  assert.deepEqual({ address: got.address, port: got.port }, { address: relayed.address, port: relayed.port }, 'from the relayed address');
  const back = randomBytes(size);
  const indications = c.indications.length;
  peer.send(back, relayed);
  const cd = await c.nextChannelData(`${size} bytes back from the ${peer.host} peer (ChannelData)`);
  assert.equal(cd.channel, channel);
  assert.deepEqual(cd.data, back, `ChannelData ${size} bytes: byte-exact at the client`);
  assert.equal(c.indications.length, indications, 'a bound peer comes as ChannelData, not as a Data indication');
}

async function secretFile(t: { after: (fn: () => void) => void }): Promise<string> {
  const file = join(testTempDir(t), 'secret');
  writeFileSync(file, `${SECRET}\n`, { mode: 0o600 });
  return file;
}

/** A secret file, a process group and sockets to close: all cleaned up after the test, also on failure. */
async function fixture(t: TestContext): Promise<{ secret: string; group: ProcessGroup; closers: (() => void)[] }> {
  const secret = await secretFile(t);
  const group = new ProcessGroup();
  const closers: (() => void)[] = [];
  t.after(async () => {
    for (const close of closers) close();
    await group.stopAll();
  });
  return { secret, group, closers };
}

test('IPv6 relaying on [::1]: families, permissions, channels, Send/Data, byte-exact, and coturn -x', async (t) => {
  const { secret, group, closers } = await fixture(t);
  const server: RunningServer = await startServer(group, ['--secret-file', secret, '--allow-loopback-peers'], {}, { listen: DUAL_STACK });
  const tcp6 = listenerPort(server, 'tcp', '::1');
  const udp6 = listenerPort(server, 'udp', '::1');
  const tcp4 = listenerPort(server, 'tcp', '127.0.0.1');
  const inRelayRange = (p: number): boolean => p >= server.relayPorts.min && p <= server.relayPorts.max;
  const client = async (transport: 'tcp' | 'udp', host: string, port: number): Promise<TurnClient> => {
    const c = transport === 'tcp' ? await TurnClient.tcp(host, port) : await TurnClient.udp(host, port);
    closers.push(() => c.close());
    return c;
  };
  const peer = async (host: string): Promise<Peer> => {
    const p = await Peer.open(host);
    closers.push(() => p.close());
    return p;
  };

  await t.test(
    'a. REQUESTED-ADDRESS-FAMILY IPv6 over TCP: relayed on ::1; permission, Send/Data and a channel to a [::1] peer, byte-exact both ways',
    async () => {
      const c = await client('tcp', '::1', tcp6);
      const res = await c.ask(Method.Allocate, requestFamily('IPv6'));
      assertSuccess(res, 'Allocate IPv6');
      const relayed = relayedAddresses(res);
      assert.equal(relayed.length, 1, 'one relayed address');
      const relay = relayed[0] as TransportAddress;
      assert.equal(relay.family, 'IPv6');
      assert.equal(relay.address, '::1');
      assert.ok(inRelayRange(relay.port), `relay port ${relay.port} in ${JSON.stringify(server.relayPorts)}`);
      assert.deepEqual(readAddressAttribute(res, AttributeType.XorMappedAddress), c.local, 'XOR-MAPPED-ADDRESS is the client as seen over IPv6');

      const p = await peer('::1');
      const v4 = await peer('127.0.0.1');
      assert.equal(errorCode(await c.permit(v4.address)), 443, 'an IPv4 peer on an IPv6-only allocation: 443');
      assert.equal(errorCode(await c.bind(0x4002, v4.address)), 443, 'ChannelBind to an IPv4 peer: 443');
      // Address-and-port filtering over IPv6 too: another port on the permitted address is not heard.
      const stranger = await peer('::1');
      assertSuccess(await c.permit(p.address), 'CreatePermission [::1]');
      for (const size of SIZES) await roundTripIndication(c, p, relay, size);
      stranger.send(Buffer.from('not asked for'), relay);

      assertSuccess(await c.bind(0x4001, p.address), 'ChannelBind [::1]');
      for (const size of SIZES) await roundTripChannel(c, 0x4001, p, relay, size);
      // Send indications to a bound peer still reach it; replies come on the channel.
      c.sendIndication(p.address, Buffer.from('via Send'));
      assert.deepEqual((await p.next('Send to a bound peer')).data, Buffer.from('via Send'));

      const refreshV4 = await c.ask(Method.Refresh, (b) => b.add(AttributeType.RequestedAddressFamily, { kind: 'family', family: 'IPv4' }));
      assert.equal(errorCode(refreshV4), 443, 'Refresh naming IPv4 on an IPv6 allocation: 443');
      assertSuccess(await c.ask(Method.Refresh, (b) => b.add(AttributeType.RequestedAddressFamily, { kind: 'family', family: 'IPv6' })), 'Refresh IPv6');

      stranger.send(Buffer.from('still not asked for'), relay);
      await sleep(QUIET_MS);
      assert.equal(v4.got.length, 0, 'the IPv4 peer got nothing');
      for (const ind of c.indications) assert.notEqual(dataIndication(ind).peer?.port, stranger.port, 'nothing from an unasked port');
      for (const cd of c.channelData) assert.equal(cd.channel, 0x4001);
    },
  );

  await t.test('b. ADDITIONAL-ADDRESS-FAMILY IPv6: an IPv4 and an IPv6 relayed address, and both relay', async () => {
    const c = await client('tcp', '127.0.0.1', tcp4);
    const res = await c.ask(Method.Allocate, additionalIpv6);
    assertSuccess(res, 'dual Allocate');
    assert.equal(getAttribute(res, AttributeType.AddressErrorCode), undefined, 'no ADDRESS-ERROR-CODE');
    const relayed = relayedAddresses(res);
    assert.deepEqual(
      relayed.map((r) => [r.family, r.address]),
      [
        ['IPv4', '127.0.0.1'],
        ['IPv6', '::1'],
      ],
    );
    for (const r of relayed) assert.ok(inRelayRange(r.port), `relay port ${r.port}`);
    const [relay4, relay6] = relayed as [TransportAddress, TransportAddress];
    assert.deepEqual(readAddressAttribute(res, AttributeType.XorMappedAddress), c.local);

    const p4 = await peer('127.0.0.1');
    const p6 = await peer('::1');
    assertSuccess(await c.permit(p4.address, p6.address), 'one CreatePermission for both families');
    for (const size of [3, 1200]) {
      await roundTripIndication(c, p4, relay4, size);
      await roundTripIndication(c, p6, relay6, size);
    }
    assertSuccess(await c.bind(0x4000, p4.address), 'ChannelBind IPv4 peer');
    assertSuccess(await c.bind(0x4001, p6.address), 'ChannelBind IPv6 peer');
    for (const size of [1, 161, 4093]) {
      await roundTripChannel(c, 0x4000, p4, relay4, size);
      await roundTripChannel(c, 0x4001, p6, relay6, size);
    }
    assertSuccess(
      await c.ask(Method.Refresh, (b) => b.add(AttributeType.RequestedAddressFamily, { kind: 'family', family: 'IPv4' })),
      'Refresh IPv4 of a dual allocation',
    );
    assertSuccess(
      await c.ask(Method.Refresh, (b) => b.add(AttributeType.RequestedAddressFamily, { kind: 'family', family: 'IPv6' })),
      'Refresh IPv6 of a dual allocation',
    );
  });

  await t.test('e. IPv6 Data indications over UDP to [::1]: XOR-PEER-ADDRESS is 20 bytes, family 2, XOR-ed with cookie and transaction id', async () => {
    const c = await client('udp', '::1', udp6);
    const res = await c.ask(Method.Allocate, requestFamily('IPv6'));
    assertSuccess(res, 'Allocate IPv6 over UDP');
    const relay = relayedAddresses(res)[0] as TransportAddress;
    assert.equal(relay.address, '::1');
    assert.deepEqual(readAddressAttribute(res, AttributeType.XorMappedAddress), c.local);
    const p = await peer('::1');
    assertSuccess(await c.permit(p.address), 'CreatePermission over UDP');
    const tids = new Set<string>();
    for (const size of [1, 100, 1200]) {
      const ind = await roundTripIndication(c, p, relay, size);
      const raw = rawXorPeerAddress(ind);
      assert.equal(getAttribute(ind, AttributeType.XorPeerAddress)?.value.length, 20, '4 + 16 bytes');
      assert.equal(raw.family, 0x02, 'IPv6 family byte');
      assert.equal(raw.port, p.port);
      assert.deepEqual(raw.ip, parseIp('::1'));
      tids.add(ind.transactionId.toString('hex'));
    }
    assert.equal(tids.size, 3, 'each indication has its own transaction id (the XOR key of the address)');
    assertSuccess(await c.bind(0x4fff, p.address), 'ChannelBind over UDP');
    for (const size of [1, 3, 1200]) await roundTripChannel(c, 0x4fff, p, relay, size);
  });

  await t.test('an IPv4-mapped peer (::ffff:127.0.0.1) on an IPv6 relay: 443, since no IPv6 socket can send to it', async () => {
    const c = await client('tcp', '::1', tcp6);
    assertSuccess(await c.ask(Method.Allocate, requestFamily('IPv6')), 'Allocate IPv6');
    const v4 = await peer('127.0.0.1');
    const mapped = addr(`::ffff:127.0.0.1`, v4.port);
    assert.equal(errorCode(await c.permit(mapped)), 443, 'CreatePermission');
    assert.equal(errorCode(await c.bind(0x4000, mapped)), 443, 'ChannelBind');
    c.sendIndication(mapped, Buffer.from('mapped'));
    await sleep(QUIET_MS);
    assert.equal(v4.got.length, 0);
  });

  // uclient's IPv6 mode is -x (REQUESTED-ADDRESS-FAMILY IPv6; an IPv6 -e peer implies it). Its
  // dual mode -Z is left out: coturn before 4.10 (Debian has 4.6.1) sends ADDITIONAL-ADDRESS-FAMILY
  // as 0x8032, a pre-RFC 8656 code point this server ignores as unknown and optional, answering
  // with an IPv4 relay only, which uclient then refuses for its IPv6 peer.
  const uclientPeer = await startTurnutilsPeer(group, { host: '::1' });
  const peer6 = { host: uclientPeer.host, port: uclientPeer.port };
  const uclientRuns: [string, Parameters<typeof runUclient>[1], number][] = [
    ['TCP to [::1], channels', { server: { host: '::1', port: tcp6 }, secret: SECRET, peer: peer6, messages: 20, extraArgs: ['-x', '-c'] }, 20],
    ['TCP to [::1], Send indications', { server: { host: '::1', port: tcp6 }, secret: SECRET, peer: peer6, messages: 20, extraArgs: ['-x', '-c', '-s'] }, 20],
    ['UDP to [::1], channels', { server: { host: '::1', port: udp6 }, secret: SECRET, peer: peer6, tcp: false, messages: 20, extraArgs: ['-x', '-c'] }, 20],
    [
      'TCP to 127.0.0.1, IPv6 relay, 5 clients',
      { server: { host: '127.0.0.1', port: tcp4 }, secret: SECRET, peer: peer6, clients: 5, messages: 10, extraArgs: ['-x', '-c'] },
      50,
    ],
    // Without -c: RTCP pairs, an EVEN-PORT (R) IPv6 allocation and a second one by RESERVATION-TOKEN.
    [
      'TCP to [::1], RTCP pairs by reservation token',
      { server: { host: '::1', port: tcp6 }, secret: SECRET, peer: peer6, clients: 2, messages: 10, extraArgs: ['-x'] },
      20,
    ],
  ];
  for (const [what, options, expected] of uclientRuns) {
    await t.test(`turnutils_uclient -x (IPv6 relay), turnutils_peer on ::1: ${what}`, async () => {
      const run = await runUclient(group, options);
      assertEchoed(run, what, expected);
    });
  }
});

test('c. a server with no IPv6 address: 440 for an IPv6 allocation; IPv4 only, with ADDRESS-ERROR-CODE 440, for a dual one', async (t) => {
  const { secret, group, closers } = await fixture(t);
  const server = await startServer(group, ['--secret-file', secret, '--allow-loopback-peers']);
  const c = await TurnClient.tcp('127.0.0.1', server.tcp);
  closers.push(() => c.close());
  const v6 = await c.ask(Method.Allocate, requestFamily('IPv6'));
  assert.equal(v6.messageClass, MessageClass.ErrorResponse);
  assert.equal(errorCode(v6), 440, 'Address Family not Supported');
  const e = readAttribute(v6, AttributeType.ErrorCode);
  assert.ok(e?.ok && e.value.kind === 'error-code' && /family/i.test(e.value.reason), 'with a reason phrase');

  const dual = await c.ask(Method.Allocate, additionalIpv6);
  assertSuccess(dual, 'dual Allocate on an IPv4-only server');
  assert.deepEqual(
    relayedAddresses(dual).map((r) => [r.family, r.address]),
    [['IPv4', '127.0.0.1']],
  );
  const aec = readAttribute(dual, AttributeType.AddressErrorCode);
  assert.ok(aec?.ok && aec.value.kind === 'address-error-code', 'ADDRESS-ERROR-CODE present');
  assert.equal(aec.value.family, 'IPv6');
  assert.equal(aec.value.code, 440);
  assert.equal(errorCode(await c.permit(addr('::1', 9))), 443, 'an IPv6 peer on the IPv4 allocation: 443');
});

test('d. without --allow-loopback-peers: peers at ::1, ::ffff:127.0.0.1 and 127.0.0.1 get 403 and receive nothing', async (t) => {
  const { secret, group, closers } = await fixture(t);
  const server = await startServer(group, ['--secret-file', secret], {}, { listen: DUAL_STACK });
  const p6 = await Peer.open('::1');
  const p4 = await Peer.open('127.0.0.1');
  closers.push(
    () => p6.close(),
    () => p4.close(),
  );
  const denied = [p6.address, addr('::ffff:127.0.0.1', p4.port), p4.address];
  for (const [name, fill] of [
    ['IPv6', requestFamily('IPv6')],
    ['dual', additionalIpv6],
  ] as const) {
    const c = await TurnClient.tcp('::1', listenerPort(server, 'tcp', '::1'));
    closers.push(() => c.close());
    assertSuccess(await c.ask(Method.Allocate, fill), `${name} Allocate`);
    for (const p of denied) {
      // An IPv4 peer on the IPv6-only allocation is a family mismatch before it is a policy matter.
      const want = name === 'IPv6' && p.family === 'IPv4' ? 443 : 403;
      assert.equal(errorCode(await c.permit(p)), want, `${name}: CreatePermission ${p.address}`);
      assert.equal(errorCode(await c.bind(0x4000, p)), want, `${name}: ChannelBind ${p.address}`);
      c.sendIndication(p, Buffer.from(`to ${p.address}`));
      c.sendChannel(0x4000, Buffer.from('unbound channel'));
    }
  }
  await sleep(QUIET_MS);
  assert.equal(p6.got.length, 0, 'the ::1 peer received nothing');
  assert.equal(p4.got.length, 0, 'the 127.0.0.1 peer received nothing');
});
