// --max-queue-delay-ms on the server's writer towards a TCP client (issue 14, deliverable 3):
// - a plain TURN client (coturn's turnutils_uclient) on an uncongested path sees no difference:
//   every message echoed, nothing counted stale;
// - a client that stops reading: relayed datagrams that waited too long are dropped and counted
//   (onionturn_dropped_total{reason="stale"}) instead of filling the 1 MiB byte bound; a Refresh
//   answered meanwhile (control) still arrives; what arrives is whole and in order. With the time
//   bound off (0) the same stall fills the byte bound instead.
import { test, type TestContext } from 'node:test';
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
  hasDelayFeedbackOffer,
  longTermKey,
  readAddressAttribute,
  readAttribute,
  readText,
  type StunMessage,
  type TransportAddress,
} from '@onionturn/protocol';
import { ProcessGroup, runUclient, sleep, startTurnutilsPeer } from '@onionturn/testkit';
import { TurnServer, createLogger, createMetricsRegistry, staticUsers } from '../src/index.js';

const REALM = 'queue-delay.test';
const KEY = longTermKey('alice', REALM, 'pw');
/** Datagram payload: a sequence number, then its low byte repeated (whole and its own). */
const PAYLOAD = 1000;
/** Datagrams sent once the client reads again. */
const FRESH = 20;

async function startServer(t: TestContext, maxQueueDelayMs?: number): Promise<TurnServer> {
  const server = await TurnServer.start({
    listen: [{ protocol: 'tcp', host: '127.0.0.1', port: 0 }],
    realm: REALM,
    lookup: staticUsers(new Map([['alice', 'pw']])),
    allowLoopbackPeers: true,
    relayPorts: { min: 47000, max: 47999 },
    logger: createLogger({ level: 'error' }),
    limits: { allocationsPerUser: 100 },
    ...(maxQueueDelayMs !== undefined ? { maxQueueDelayMs } : {}),
  });
  t.after(() => server.close());
  return server;
}

/** What a scrape of the server's /metrics says for onionturn_dropped_total{reason}. */
async function droppedMetric(server: TurnServer, reason: string, metric = 'dropped_total', label = 'reason'): Promise<number> {
  const text = await createMetricsRegistry(server.core).metrics();
  const m = new RegExp(`^onionturn_${metric}\\{${label}="${reason}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** A TURN client over TCP that can stop reading. */
class Client {
  readonly messages: StunMessage[] = [];
  readonly data: number[] = [];
  damaged = 0;
  readonly #framer = new StreamFramer((frame) => {
    const d = decodeMessage(Buffer.from(frame));
    if (!d.ok) return;
    const m = d.value;
    if (m.method === Method.Data && m.messageClass === MessageClass.Indication) {
      const r = readAttribute(m, AttributeType.Data);
      const bytes = r?.ok && r.value.kind === 'bytes' ? r.value.bytes : Buffer.alloc(0);
      const n = bytes.readUInt32BE(0);
      if (bytes.length !== PAYLOAD || !bytes.subarray(4).every((b) => b === (n & 0xff))) this.damaged++;
      this.data.push(n);
    } else this.messages.push(m);
  });
  nonce = '';
  constructor(readonly sock: Socket) {
    sock.on('data', (c: Buffer) => this.#framer.push(c));
    sock.on('error', () => undefined);
  }
  static async open(t: TestContext, port: number): Promise<Client> {
    const s = connect(port, '127.0.0.1');
    t.after(() => s.destroy());
    await once(s, 'connect');
    return new Client(s);
  }
  async next(timeoutMs = 3000): Promise<StunMessage> {
    const deadline = Date.now() + timeoutMs;
    const start = this.messages.length;
    while (Date.now() < deadline && this.messages.length === start) await sleep(5);
    const m = this.messages[start];
    assert.ok(m, 'an answer');
    return m;
  }
  signed(method: number, fill: (b: MessageBuilder) => void = () => undefined): Buffer {
    const b = new MessageBuilder(method, MessageClass.Request);
    fill(b);
    b.add(AttributeType.Username, { kind: 'text', text: 'alice' })
      .add(AttributeType.Realm, { kind: 'text', text: REALM })
      .add(AttributeType.Nonce, { kind: 'text', text: this.nonce });
    return b.build({ integrityKey: KEY });
  }
  /** Allocates and lets `peer` send to the relay; returns the relayed address. */
  async allocate(peer: TransportAddress): Promise<TransportAddress> {
    const req = (): MessageBuilder => new MessageBuilder(Method.Allocate, MessageClass.Request);
    this.sock.write(req().add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }).build());
    this.nonce = readText(await this.next(), AttributeType.Nonce) ?? '';
    this.sock.write(this.signed(Method.Allocate, (b) => b.add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })));
    const ok = await this.next();
    assert.equal(ok.messageClass, MessageClass.SuccessResponse);
    const relayed = readAddressAttribute(ok, AttributeType.XorRelayedAddress);
    assert.ok(relayed);
    this.sock.write(this.signed(Method.CreatePermission, (b) => b.add(AttributeType.XorPeerAddress, { kind: 'address', address: peer })));
    assert.equal((await this.next()).messageClass, MessageClass.SuccessResponse);
    // A Send first: address-and-port filtering lets this peer's datagrams through from then on.
    this.sock.write(
      new MessageBuilder(Method.Send, MessageClass.Indication)
        .add(AttributeType.XorPeerAddress, { kind: 'address', address: peer })
        .add(AttributeType.Data, { kind: 'bytes', bytes: Buffer.from('hello') })
        .build(),
    );
    return relayed;
  }
}

async function udpPeer(t: TestContext): Promise<{ sock: UdpSocket; addr: TransportAddress }> {
  const sock = createSocket('udp4');
  t.after(() => sock.close());
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return { sock, addr: { family: 'IPv4', address: '127.0.0.1', port: sock.address().port } };
}

/**
 * The client stops reading; the peer sends `count` datagrams, one every `everyMs`; a Refresh
 * goes out in the middle; then the client reads again until nothing more comes.
 */
async function stalledRun(
  t: TestContext,
  maxQueueDelayMs: number | undefined,
  count: number,
  everyMs: number,
): Promise<{ server: TurnServer; client: Client; sent: number }> {
  const server = await startServer(t, maxQueueDelayMs);
  const port = server.addresses[0]!.port;
  const peer = await udpPeer(t);
  const client = await Client.open(t, port);
  const relayed = await client.allocate(peer.addr);
  await once(peer.sock, 'message'); // the hello: the relay reaches the peer
  client.sock.pause();
  const answersBefore = client.messages.length;
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const d = Buffer.alloc(PAYLOAD, i & 0xff);
    d.writeUInt32BE(i, 0);
    peer.sock.send(d, relayed.port, relayed.address);
    if (i === count >> 1) client.sock.write(client.signed(Method.Refresh));
    // Paced like a call (bursts of a few packets), not a flood the relay socket would drop.
    const due = started + (i + 1) * everyMs;
    if (i % 8 === 7) while (performance.now() < due) await sleep(Math.max(1, due - performance.now()));
  }
  await sleep(300);
  client.sock.resume();
  const quiet = async (): Promise<void> => {
    let seen = -1;
    for (let still = 0; still < 3;) {
      await sleep(200);
      still = client.data.length === seen ? still + 1 : 0;
      seen = client.data.length;
    }
  };
  await quiet();
  // After the stall, fresh datagrams flow again at once.
  for (let i = count; i < count + FRESH; i++) {
    const d = Buffer.alloc(PAYLOAD, i & 0xff);
    d.writeUInt32BE(i, 0);
    peer.sock.send(d, relayed.port, relayed.address);
    await sleep(2);
  }
  await quiet();
  assert.equal(client.damaged, 0, 'every datagram whole and its own');
  for (let i = 1; i < client.data.length; i++) assert.ok(client.data[i]! > client.data[i - 1]!, 'in order');
  const answers = client.messages.slice(answersBefore);
  assert.deepEqual(
    answers.map((m) => [m.method, m.messageClass]),
    [[Method.Refresh, MessageClass.SuccessResponse]],
    'the Refresh answer (control) arrived',
  );
  return { server, client, sent: count + FRESH };
}

test('a client that stops reading: stale datagrams are dropped and counted, not queued up to the byte bound; control still arrives', async (t) => {
  // 4 MB/s for 1.5 s: beyond the kernel's socket buffers and the 1 MiB bound.
  const { server, client, sent } = await stalledRun(t, 150, 6000, 0.25);
  const stale = await droppedMetric(server, 'stale');
  const backlog = await droppedMetric(server, 'backlog-full');
  assert.ok(stale > 0, 'stale datagrams counted');
  // By size: all of them the test's 1000-byte (video-sized) datagrams.
  assert.equal(await droppedMetric(server, 'large', 'stale_dropped_total', 'size'), stale, 'the stale ones, large');
  assert.equal(await droppedMetric(server, 'small', 'stale_dropped_total', 'size'), 0, 'none small');
  // A plain client: nothing of the delay extension on its connection (no echo in the Allocate
  // success, no Binding indication, i.e. no report).
  assert.ok(!client.messages.some((m) => hasDelayFeedbackOffer(m.raw)), 'no DELAY-FEEDBACK');
  assert.ok(!client.messages.some((m) => m.method === Method.Binding && m.messageClass === MessageClass.Indication), 'no report');
  assert.equal(stale, server.core.stats.queueDrops.stale);
  assert.equal(backlog, 0, 'the byte bound was never reached: the time bound came first');
  // Nothing else lost on loopback: every datagram arrived or was counted stale.
  assert.ok(client.data.length + stale <= sent);
  const s = server.core.stats;
  assert.ok(
    client.data.length + stale >= sent * 0.98,
    `${client.data.length} arrived + ${stale} stale of ${sent}; relayed to client ${s.packetsToClient}, bandwidth ${s.droppedBandwidth}, filtered ${s.droppedFiltered}`,
  );
  // What the kernel's buffers held arrives first; what waited in our queue past the budget is
  // gone; the fresh datagrams after the stall all arrive.
  assert.deepEqual(
    client.data.slice(-FRESH),
    Array.from({ length: FRESH }, (_, i) => sent - FRESH + i),
    'the fresh datagrams',
  );
  const gaps = client.data.filter((n, i) => i > 0 && n !== client.data[i - 1]! + 1).length;
  assert.ok(gaps >= 1, 'stale ones in between were dropped');
});

test('the same stall with --max-queue-delay-ms 0: the byte bound drops instead, nothing stale', async (t) => {
  const { server } = await stalledRun(t, 0, 6000, 0.25);
  assert.equal(await droppedMetric(server, 'stale'), 0);
  assert.ok((await droppedMetric(server, 'backlog-full')) > 0, 'the 1 MiB byte bound dropped');
});

test('a plain TURN client on an uncongested path sees no difference: turnutils_uclient echoes everything, nothing stale', async (t) => {
  const server = await startServer(t); // the default bound
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const peer = await startTurnutilsPeer(group);
  const port = server.addresses[0]!.port;
  for (const [what, extra] of [
    ['channels', ['-c']],
    ['Send indications', ['-c', '-s']],
  ] as const) {
    const run = await runUclient(group, {
      server: { host: '127.0.0.1', port },
      username: 'alice',
      password: 'pw',
      peer: { host: peer.host, port: peer.port },
      clients: 20,
      messages: 50,
      length: 1000,
      extraArgs: [...extra],
      timeoutMs: 60_000,
    });
    assert.equal(run.exitCode, 0, `${what}: ${run.output.slice(-800)}`);
    assert.equal(run.sent, 1000, what);
    assert.equal(run.received, run.sent, `${what}: ${run.received} of ${run.sent} came back`);
  }
  assert.equal(await droppedMetric(server, 'stale'), 0);
  assert.equal(await droppedMetric(server, 'backlog-full'), 0);
  // The delay extension (on by default) is never negotiated with a client that does not offer
  // it: no echo, no reports, no cap on its connection.
  const df = server.core.stats.delayFeedback;
  assert.deepEqual([df.negotiated, df.reportsSent, df.reportsReceived, df.held], [0, 0, 0, 0]);
  const text = await createMetricsRegistry(server.core).metrics();
  assert.match(text, /^onionturn_delay_feedback_negotiated_total 0$/m);
});
