#!/usr/bin/env node
// `npm run bench:rtt`: where a call's round trip goes on the private Tor network (issue 14). A
// benchmark, not a test: on one network in one run, small datagrams (--size bytes, --rate per
// second, one layer after another) measure the round trip of each layer a relay-only call adds:
//   0  TURN/TCP straight to the onionturn server, no Tor (the relay's own cost)
//   1  a bare Tor stream: SOCKS CONNECT through an exit to a TCP echo
//   2  TURN/TCP to the onionturn server through a Tor stream, a channel to a UDP echo peer
//   3  the same through the shim: app --UDP--> shim --Tor--> server --UDP--> echo
//   4  the call's path without Chromium: app A --UDP--> shim --Tor--> server, allocation A ->
//      allocation B --Tor--> shim --UDP--> app B, which sends it back the same way
//   4t the same without the shim: two TURN/TCP clients through their own Tor streams
//   5  coturn at the exit instead (the by-hand path): as 2 and 4t
// Everything listens on loopback and is started and stopped here by PID; the network is `ideal`
// unless --profile names another lab profile.
//   --seconds N   per layer (default 15)      --rate N    datagrams per second (default 20)
//   --size N      bytes of payload (default 160)   --layers 0,1,2,3,4,4t,5   --json FILE
//   --hold N      after the layers, keep everything up N seconds (strace/ss from another shell)
import { createHmac, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { prepare } from './prepare.mjs';

const ALL_LAYERS = ['0', '1', '2', '3', '4', '4t', '5'];

function parseArgs(argv) {
  const o = { seconds: 15, rate: 20, size: 160, layers: ALL_LAYERS, json: undefined, hold: 0, profile: 'ideal' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => inline ?? argv[++i];
    if (flag === '--seconds') o.seconds = Number(value());
    else if (flag === '--rate') o.rate = Number(value());
    else if (flag === '--size') o.size = Number(value());
    else if (flag === '--layers') o.layers = value().split(',');
    else if (flag === '--json') o.json = value();
    else if (flag === '--hold') o.hold = Number(value());
    else if (flag === '--profile') o.profile = value();
    else if (flag === '--help' || flag === '-h') {
      console.log(
        'usage: node scripts/rtt-breakdown.mjs [--seconds N] [--rate N] [--size N] [--layers 0,1,2,3,4,4t,5] [--json FILE] [--hold N] [--profile NAME]',
      );
      process.exit(0);
    } else {
      console.error(`rtt-breakdown: unknown argument ${argv[i]}`);
      process.exit(2);
    }
  }
  const bad = (m) => {
    console.error(`rtt-breakdown: ${m}`);
    process.exit(2);
  };
  if (!(o.seconds > 0 && o.seconds <= 120)) bad('--seconds must be 1-120 (a bounded load)');
  if (!(o.rate > 0 && o.rate <= 200)) bad('--rate must be 1-200 datagrams per second');
  if (!(Number.isInteger(o.size) && o.size >= 16 && o.size <= 1200)) bad('--size must be 16-1200 bytes');
  if (!(o.hold >= 0 && o.hold <= 600)) bad('--hold must be 0-600 seconds');
  for (const l of o.layers) if (!ALL_LAYERS.includes(l)) bad(`unknown layer ${l} (known: ${ALL_LAYERS.join(',')})`);
  return o;
}

const opts = parseArgs(process.argv.slice(2));
await prepare('rtt-breakdown');
const P = await import('@onionturn/protocol');
const { ProcessGroup, labProfile, socks5Connect, startBridge, startCoturn, sleep, waitFor } = await import('@onionturn/testkit');
const { AttributeType, MessageBuilder, MessageClass, Method, StreamFramer, FrameKind, decodeMessage, decodeChannelData, encodeChannelData, longTermKey } = P;

const t0 = Date.now();
const say = (m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}`);

/** Nearest-rank percentile. */
function pct(xs, p) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

// ---- transports: a TURN client speaks over TCP (framed, padded) or UDP (one message per datagram)

function tcpTransport(sock) {
  sock.setNoDelay(true);
  let handler = () => undefined;
  const framer = new StreamFramer((f, kind) => handler(Buffer.from(f), kind === FrameKind.ChannelData), { rfc5766Channels: true });
  sock.on('data', (c) => framer.push(c));
  sock.on('error', () => undefined);
  return {
    pad: true,
    send: (b) => sock.write(b),
    onFrame: (h) => (handler = h),
    close: () => sock.destroy(),
  };
}

async function udpTransport(host, port) {
  const sock = createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  let handler = () => undefined;
  sock.on('message', (m) => handler(m, (m[0] & 0xc0) === 0x40));
  return {
    pad: false,
    send: (b) => sock.send(b, port, host),
    onFrame: (h) => (handler = h),
    close: () => sock.close(),
  };
}

/** A minimal TURN client: one allocation, channels, ChannelData (no refreshes: runs are short). */
class TurnClient {
  #t;
  #stun = [];
  #waiter;
  #onData = () => undefined;
  #key;
  #username;
  #realm;
  #nonce;
  relayed;

  constructor(transport) {
    this.#t = transport;
    transport.onFrame((frame, isChannel) => {
      if (isChannel) {
        const cd = decodeChannelData(frame);
        if (cd.ok) this.#onData(cd.value.channel, cd.value.data);
        return;
      }
      const d = decodeMessage(frame);
      if (!d.ok) return;
      this.#stun.push(d.value);
      this.#waiter?.();
    });
  }

  async #request(build) {
    const tid = randomBytes(12);
    this.#t.send(build(tid));
    const res = await waitFor('a TURN answer', () => this.#stun.find((m) => m.transactionId.equals(tid)), 30_000, 2);
    return res;
  }

  #authed(method, tid, add) {
    const b = new MessageBuilder(method, MessageClass.Request, tid);
    add(b);
    b.add(AttributeType.Username, { kind: 'text', text: this.#username })
      .add(AttributeType.Realm, { kind: 'text', text: this.#realm })
      .add(AttributeType.Nonce, { kind: 'text', text: this.#nonce });
    return b.build({ integrityKey: this.#key });
  }

  async allocate(username, password) {
    const transport = (b) => b.add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 });
    const challenge = await this.#request((tid) => transport(new MessageBuilder(Method.Allocate, MessageClass.Request, tid)).build());
    this.#realm = P.readText(challenge, AttributeType.Realm);
    this.#nonce = P.readText(challenge, AttributeType.Nonce);
    if (this.#realm === undefined || this.#nonce === undefined) throw new Error('no 401 challenge to Allocate');
    this.#username = username;
    this.#key = longTermKey(username, this.#realm, password);
    const res = await this.#request((tid) => this.#authed(Method.Allocate, tid, transport));
    if (res.messageClass !== MessageClass.SuccessResponse) throw new Error(`Allocate refused: ${JSON.stringify(P.readErrorCode(res))}`);
    this.relayed = P.readAddressAttribute(res, AttributeType.XorRelayedAddress);
    return this.relayed;
  }

  async channelBind(channel, peer) {
    const res = await this.#request((tid) =>
      this.#authed(Method.ChannelBind, tid, (b) =>
        b.add(AttributeType.ChannelNumber, { kind: 'channel-number', channel }).add(AttributeType.XorPeerAddress, { kind: 'address', address: peer }),
      ),
    );
    if (res.messageClass !== MessageClass.SuccessResponse) throw new Error(`ChannelBind refused: ${JSON.stringify(P.readErrorCode(res))}`);
  }

  send(channel, data) {
    this.#t.send(encodeChannelData(channel, data, this.#t.pad));
  }

  onData(h) {
    this.#onData = h;
  }

  close() {
    this.#t.close();
  }
}

// ---- the pinger: a datagram every 1/rate s carrying its sequence number; RTT per echoed one

/** `link.send(payload)` sends; call the returned `received(payload)` for each echo. */
function pinger(size) {
  const sent = new Map();
  const rtts = [];
  let seq = 0;
  let late = 0;
  return {
    received(payload) {
      if (payload.length < 4) return;
      const t = sent.get(payload.readUInt32BE(0));
      if (t === undefined) return void late++;
      sent.delete(payload.readUInt32BE(0));
      rtts.push(performance.now() - t);
    },
    next() {
      const b = Buffer.alloc(size);
      b.writeUInt32BE(++seq, 0);
      sent.set(seq, performance.now());
      return b;
    },
    result: () => ({ rtts, sent: seq, lost: sent.size + late }),
  };
}

/** Runs a layer: warm-up (1 s, not counted), then opts.seconds at opts.rate; returns stats. */
async function runLayer(send, setReceiver) {
  const warm = pinger(opts.size);
  setReceiver((p) => warm.received(p));
  for (let i = 0; i < opts.rate; i++) {
    send(warm.next());
    await sleep(1000 / opts.rate);
  }
  await sleep(300);
  const p = pinger(opts.size);
  setReceiver((x) => p.received(x));
  const gap = 1000 / opts.rate;
  const start = performance.now();
  for (let i = 0; i < opts.seconds * opts.rate; i++) {
    // Paced against the start, so a slow timer does not lower the rate.
    const due = start + i * gap - performance.now();
    if (due > 0) await sleep(due);
    send(p.next());
  }
  await sleep(1000);
  const r = p.result();
  return {
    n: r.rtts.length,
    lost: r.lost,
    p50: pct(r.rtts, 50),
    p95: pct(r.rtts, 95),
    min: Math.min(...r.rtts),
    max: Math.max(...r.rtts),
    mean: r.rtts.reduce((a, b) => a + b, 0) / Math.max(1, r.rtts.length),
  };
}

// ---- parts

async function startTcpEcho() {
  const sockets = new Set();
  const server = createServer((s) => {
    s.setNoDelay(true);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    s.on('data', (c) => s.write(c));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { port: server.address().port, close: () => new Promise((r) => (sockets.forEach((s) => s.destroy()), server.close(() => r()))) };
}

async function startUdpEcho() {
  const sock = createSocket('udp4');
  sock.on('message', (m, from) => sock.send(m, from.port, from.address));
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  return { port: sock.address().port, close: () => sock.close() };
}

/** Reads fixed-size messages off a TCP byte stream. */
function fixedReader(sock, size, onMessage) {
  let buf = Buffer.alloc(0);
  sock.on('data', (c) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= size) {
      onMessage(buf.subarray(0, size));
      buf = buf.subarray(size);
    }
  });
}

let isolation = 0;
const torStream = (tor, host, port) =>
  socks5Connect({ proxyPort: tor.socksPort, host, port, username: `rtt-${process.pid}-${++isolation}`, password: 'x', timeoutMs: 60_000 });

const CHANNEL = 0x4000;

/** A TURN client with an allocation and a channel to the UDP echo: layers 0, 2, 3, 5. */
async function echoLayer(transport, cred, udpEcho) {
  const c = new TurnClient(transport);
  await c.allocate(cred.username, cred.password);
  await c.channelBind(CHANNEL, { family: 'IPv4', address: '127.0.0.1', port: udpEcho.port });
  let recv = () => undefined;
  c.onData((_ch, d) => recv(d));
  try {
    return await runLayer(
      (b) => c.send(CHANNEL, b),
      (r) => (recv = r),
    );
  } finally {
    c.close();
  }
}

/** Two TURN clients, each with a channel to the other's relayed address; B echoes: layers 4, 4t, 5. */
async function pairLayer(makeTransport, cred) {
  const a = new TurnClient(await makeTransport());
  const b = new TurnClient(await makeTransport());
  const ra = await a.allocate(cred.username, cred.password);
  const rb = await b.allocate(cred.username, cred.password);
  await a.channelBind(CHANNEL, rb);
  await b.channelBind(CHANNEL, ra);
  b.onData((_ch, d) => b.send(CHANNEL, d));
  let recv = () => undefined;
  a.onData((_ch, d) => recv(d));
  try {
    return await runLayer(
      (x) => a.send(CHANNEL, x),
      (r) => (recv = r),
    );
  } finally {
    a.close();
    b.close();
  }
}

const SECRET = 'rtt-breakdown-coturn-secret';
const group = new ProcessGroup();
let bridge;
const closers = [];
let cleaning;
const cleanup = () =>
  (cleaning ??= (async () => {
    for (const c of closers) await Promise.resolve(c()).catch(() => undefined);
    await group.stopAll().catch(() => undefined);
    await bridge?.stop().catch(() => undefined);
  })());
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => void cleanup().then(() => process.exit(130)));

let exitCode = 0;
try {
  const profile = labProfile(opts.profile);
  bridge = await startBridge({ profile, server: { allowLoopbackPeers: true }, progress: (m) => say(m) });
  const tor = bridge.tor;
  const tcpEcho = await startTcpEcho();
  closers.push(tcpEcho.close);
  const udpEcho = await startUdpEcho();
  closers.push(udpEcho.close);
  const coturn = opts.layers.includes('5') ? await startCoturn(group, { secrets: [SECRET], verbose: false }) : undefined;
  // coturn's REST credentials (its --use-auth-secret): HMAC-SHA1 of the username, base64.
  const cot = () => {
    const username = `${Math.floor(Date.now() / 1000) + 3600}:rtt`;
    return { username, password: createHmac('sha1', SECRET).update(username).digest('base64') };
  };
  say(`pids: server ${bridge.server.process.child.pid}, shim ${bridge.shim.process.child.pid}, tor ${tor.nodes.map((n) => `${n.name}=${n.pid}`).join(' ')}`);
  say(
    `ports: server ${bridge.server.port}, shim ${bridge.shim.port}, socks ${tor.socksPort}, tcp echo ${tcpEcho.port}, udp echo ${udpEcho.port}${coturn ? `, coturn ${coturn.port}` : ''}`,
  );
  const cred = await bridge.credentials();
  const oc = { username: cred.username, password: cred.password };
  const rows = [];
  const run = async (id, what, f) => {
    if (!opts.layers.includes(id === '5a' || id === '5b' ? '5' : id)) return;
    say(`layer ${id}: ${what}`);
    try {
      const r = await f();
      rows.push({ layer: id, what, ...r });
      say(`  p50 ${r.p50.toFixed(1)} ms, p95 ${r.p95.toFixed(1)} ms (${r.n} back, ${r.lost} lost)`);
    } catch (err) {
      rows.push({ layer: id, what, error: err.message });
      say(`  failed: ${err.message}`);
    }
  };
  await run('0', 'TURN/TCP to onionturn server, no Tor (channel to UDP echo)', async () =>
    echoLayer(tcpTransport(await connectTcp(bridge.server.port)), oc, udpEcho),
  );
  await run('1', 'bare Tor stream: SOCKS CONNECT through an exit to a TCP echo', async () => {
    const s = await torStream(tor, '127.0.0.1', tcpEcho.port);
    s.setNoDelay(true);
    s.on('error', () => undefined);
    let recv = () => undefined;
    fixedReader(s, opts.size, (m) => recv(m));
    try {
      return await runLayer(
        (b) => s.write(b),
        (r) => (recv = r),
      );
    } finally {
      s.destroy();
    }
  });
  await run('2', 'TURN/TCP through a Tor stream to onionturn server (channel to UDP echo)', async () =>
    echoLayer(tcpTransport(await torStream(tor, '127.0.0.1', bridge.server.port)), oc, udpEcho),
  );
  await run('3', 'app --UDP--> shim --Tor--> onionturn server (channel to UDP echo)', async () =>
    echoLayer(await udpTransport('127.0.0.1', bridge.shim.port), oc, udpEcho),
  );
  await run('4', 'app A --UDP--> shim --Tor--> server A->B --Tor--> shim --UDP--> app B, and back', async () =>
    pairLayer(() => udpTransport('127.0.0.1', bridge.shim.port), oc),
  );
  await run('4t', 'as 4 without the shim: two TURN/TCP clients through Tor streams to onionturn server', async () =>
    pairLayer(async () => tcpTransport(await torStream(tor, '127.0.0.1', bridge.server.port)), oc),
  );
  if (coturn) {
    await run('5a', 'coturn: TURN/TCP through a Tor stream (channel to UDP echo) [as 2]', async () =>
      echoLayer(tcpTransport(await torStream(tor, '127.0.0.1', coturn.port)), cot(), udpEcho),
    );
    await run('5b', 'coturn: two TURN/TCP clients through Tor streams, relay to relay [as 4t]', async () =>
      pairLayer(async () => tcpTransport(await torStream(tor, '127.0.0.1', coturn.port)), cot()),
    );
  }
  console.log(`\nrtt-breakdown, profile ${profile.name}: ${opts.size}-byte datagrams at ${opts.rate}/s, ${opts.seconds} s per layer; round trip in ms`);
  console.log(`${'layer'.padEnd(6)}${'p50'.padStart(7)}${'p95'.padStart(7)}${'min'.padStart(7)}${'max'.padStart(7)}${'lost'.padStart(6)}  path`);
  for (const r of rows) {
    if (r.error) console.log(`${r.layer.padEnd(6)}${'error'.padStart(7)}  ${r.what}: ${r.error}`);
    else
      console.log(
        `${r.layer.padEnd(6)}${r.p50.toFixed(1).padStart(7)}${r.p95.toFixed(1).padStart(7)}${r.min.toFixed(1).padStart(7)}${r.max.toFixed(1).padStart(7)}${String(r.lost).padStart(6)}  ${r.what}`,
      );
  }
  if (opts.json)
    writeFileSync(opts.json, JSON.stringify({ profile: profile.name, size: opts.size, rate: opts.rate, seconds: opts.seconds, rows }, null, 2) + '\n');
  if (opts.hold > 0) {
    say(`holding everything up for ${opts.hold} s`);
    await sleep(opts.hold * 1000);
  }
} catch (err) {
  console.error(`rtt-breakdown: ${err instanceof Error ? err.stack : String(err)}`);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);

function connectTcp(port) {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}
