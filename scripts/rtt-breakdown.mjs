#!/usr/bin/env node
// `npm run bench:rtt` (scripts/rtt-breakdown.mjs): where a call's round trip goes on the private Tor network (issue 14). A
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
//   6  Chromium's data channel over the same paths (bench:call's rttIdleMs: sequential pings of
//      ~110 bytes, 100 ms apart, before any media): through the shim, and by hand (TURN/TCP to a
//      local SOCKS forwarder to coturn); the step from 4 / 5b to these is DTLS, SCTP and Chromium;
//      also each with the other's circuit layout: the shim with --isolation shared (both peers on
//      one circuit) and by hand with a circuit per TURN connection (as two users would have)
//   7  tor's Nagle: as 4t with a small datagram 2 ms before each ping, each client on its own
//      circuit or both on one; and 4t on one circuit
// Everything listens on loopback and is started and stopped here by PID; the network is `ideal`
// unless --profile names another lab profile.
//   --seconds N   per layer (default 15)      --rate N    datagrams per second (default 20)
//   --size N      bytes of payload (default 160)   --layers 0,1,2,3,4,4t,5,6,7   --json FILE
//   --hold N      after the layers, keep everything up N seconds (strace/ss from another shell)
//   --capture     tcpdump (Debian) on the loopback during each layer, on the relays' ORPorts, the
//                 SOCKS port and the TURN servers' ports, counting Nagle stalls: a segment held
//                 back until the peer's delayed ACK came (a pure ACK >= 20 ms after the data it
//                 acknowledges, and more data from the same side within 0.5 ms of it), per link
//   --quickack    run all of it in a network namespace of its own whose loopback routes carry
//                 `quickack 1` (no delayed ACKs, so tor's Nagle never waits 40 ms for one): what
//                 the same network costs without the stalls
import { createHmac, randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { prepare } from './prepare.mjs';

const ALL_LAYERS = ['0', '1', '2', '3', '4', '4t', '5', '6', '7'];

function parseArgs(argv) {
  const o = { seconds: 15, rate: 20, size: 160, layers: ALL_LAYERS, json: undefined, hold: 0, profile: 'ideal', capture: false, quickack: false };
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
    else if (flag === '--capture') o.capture = true;
    else if (flag === '--quickack') o.quickack = true;
    else if (flag === '--help' || flag === '-h') {
      console.log(
        'usage: node scripts/rtt-breakdown.mjs [--seconds N] [--rate N] [--size N] [--layers 0,1,2,3,4,4t,5,6,7] [--json FILE] [--hold N] [--profile NAME] [--capture] [--quickack]',
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
const NETNS_ENV = 'ONIONTURN_RTT_BREAKDOWN_NETNS';
if (opts.quickack && process.env[NETNS_ENV] === undefined) process.exit(await inQuickackNamespace());
const P = await import('@onionturn/protocol');
const { CallBrowser, ProcessGroup, TOOLS, requireTool, labProfile, socks5Connect, startBridge, startCoturn, startSocksForwarder, sleep, waitFor } =
  await import('@onionturn/testkit');
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
      if (payload.length < 4 || payload.readUInt32BE(0) === 0) return; // a lead datagram (layer 7)
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
async function runLayer(send, setReceiver, lead = undefined) {
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
    if (lead) {
      // A small datagram just before each ping (as a consent check or an SCTP SACK beside a data
      // channel message): two small writes into the same Tor stream a few ms apart.
      send(lead);
      await sleep(LEAD_GAP_MS);
    }
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
/** A Tor stream on a circuit of its own, or with `shared` on the circuit of every stream given the same name. */
const torStream = (tor, host, port, shared = undefined) =>
  socks5Connect({ proxyPort: tor.socksPort, host, port, username: shared ?? `rtt-${process.pid}-${++isolation}`, password: 'x', timeoutMs: 60_000 });

const CHANNEL = 0x4000;
/** The lead datagram of layer 7: 60 bytes (a pinger ignores it: sequence 0), LEAD_GAP_MS before the ping. */
const LEAD = Buffer.alloc(60);
const LEAD_GAP_MS = 2;

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
async function pairLayer(makeTransport, cred, lead = undefined) {
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
      lead,
    );
  } finally {
    a.close();
    b.close();
  }
}

// ---- Nagle stalls from a loopback capture

/** Starts tcpdump on lo for `ports` (TCP); stop() ends it and returns its text dump. */
async function startCapture(ports) {
  const tcpdump = requireTool(TOOLS.tcpdump);
  const file = join(captureDir, `layer-${Date.now()}.pcap`);
  const filter = `tcp and (${ports.map((p) => `port ${p}`).join(' or ')})`;
  const proc = group.spawn('tcpdump', tcpdump, ['-i', 'lo', '-n', '-s', '96', '-U', '-w', file, filter]);
  await waitFor('tcpdump to listen', () => proc.output().includes('listening on'), 10_000, 20);
  return {
    stop: async () => {
      proc.child.kill('SIGINT');
      await new Promise((r) => (proc.child.exitCode !== null ? r() : proc.child.once('exit', r)));
      const r = spawnSync(tcpdump, ['-r', file, '-n', '-tt'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
      rmSync(file, { force: true });
      return r.stdout;
    },
  };
}

/**
 * Nagle stalls in a tcpdump text dump: a pure ACK that comes >= 20 ms after the data it answers
 * (a delayed ACK), right after which (within 0.5 ms) the acknowledged side sends more: that data
 * had waited for the ACK. `classify(srcPort, dstPort)` names the link the held data went over.
 */
function nagleStalls(dump, classify) {
  const rows = [];
  for (const line of dump.split('\n')) {
    const m = /^(\d+\.\d+) IP [\d.]+\.(\d+) > [\d.]+\.(\d+): Flags \[([^\]]*)\].* length (\d+)/.exec(line);
    if (m) rows.push({ t: Number(m[1]) * 1000, src: Number(m[2]), dst: Number(m[3]), flags: m[4], len: Number(m[5]) });
  }
  const lastData = new Map();
  const stalls = {};
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (r.len > 0) {
      lastData.set(`${r.src}>${r.dst}`, r.t);
      continue;
    }
    if (r.flags !== '.') continue;
    const sent = lastData.get(`${r.dst}>${r.src}`);
    if (sent === undefined || r.t - sent < 20) continue;
    // A held segment waits behind unacknowledged data: nothing went out on that side meanwhile.
    lastData.delete(`${r.dst}>${r.src}`);
    const released = rows.slice(i + 1, i + 8).find((x) => x.src === r.dst && x.dst === r.src && x.len > 0 && x.t - r.t < 0.5);
    if (!released) continue;
    const link = classify(released.src, released.dst);
    const s = (stalls[link] ??= { count: 0, ms: 0 });
    s.count++;
    s.ms += r.t - sent;
  }
  return stalls;
}

const SECRET = 'rtt-breakdown-coturn-secret';
const group = new ProcessGroup();
const captureDir = mkdtempSync(join(tmpdir(), 'onionturn-rtt-breakdown-'));
let bridge;
const closers = [];
let cleaning;
const cleanup = () =>
  (cleaning ??= (async () => {
    for (const c of closers) await Promise.resolve(c()).catch(() => undefined);
    await group.stopAll().catch(() => undefined);
    await bridge?.stop().catch(() => undefined);
    rmSync(captureDir, { recursive: true, force: true });
  })());
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => void cleanup().then(() => process.exit(130)));
process.on('uncaughtException', (err) => {
  console.error(`rtt-breakdown: ${err.stack}`);
  void cleanup().then(() => process.exit(1));
});

let exitCode = 0;
try {
  const profile = labProfile(opts.profile);
  bridge = await startBridge({ profile, server: { allowLoopbackPeers: true }, progress: (m) => say(m) });
  const tor = bridge.tor;
  const tcpEcho = await startTcpEcho();
  closers.push(tcpEcho.close);
  const udpEcho = await startUdpEcho();
  closers.push(udpEcho.close);
  const coturn = opts.layers.includes('5') || opts.layers.includes('6') ? await startCoturn(group, { secrets: [SECRET], verbose: false }) : undefined;
  // coturn's REST credentials (its --use-auth-secret): HMAC-SHA1 of the username, base64.
  const cot = () => {
    const username = `${Math.floor(Date.now() / 1000) + 3600}:rtt`;
    return { username, password: createHmac('sha1', SECRET).update(username).digest('base64') };
  };
  say(`pids: server ${bridge.server.process.child.pid}, shim ${bridge.shim.process.child.pid}, tor ${tor.nodes.map((n) => `${n.name}=${n.pid}`).join(' ')}`);
  say(
    `ports: ORPorts ${tor.nodes
      .filter((n) => n.orPort)
      .map((n) => n.orPort)
      .join(
        ',',
      )}, server ${bridge.server.port}, shim ${bridge.shim.port}, socks ${tor.socksPort}, tcp echo ${tcpEcho.port}, udp echo ${udpEcho.port}${coturn ? `, coturn ${coturn.port}` : ''}`,
  );
  const orPorts = tor.nodes.filter((n) => n.orPort).map((n) => n.orPort);
  const turnPorts = [bridge.server.port, ...(coturn ? [coturn.port] : [])];
  const capturePorts = [...orPorts, tor.socksPort, ...turnPorts];
  /**
   * Which link held data went over, by its ports. Where the sender is ours (the server, the shim,
   * this script: TCP_NODELAY on every socket) nothing is held: a match there is a coincidence
   * (data relayed the moment another socket's held segment arrived), counted apart.
   */
  const classify = (src, dst) =>
    orPorts.includes(src) || orPorts.includes(dst)
      ? 'relay-relay'
      : turnPorts.includes(dst)
        ? 'exit-to-server'
        : src === tor.socksPort
          ? 'tor-to-app'
          : 'nodelay-sender(coincidence)';
  const cred = await bridge.credentials();
  const oc = { username: cred.username, password: cred.password };
  const rows = [];
  const run = async (id, what, f) => {
    if (!opts.layers.includes(/^[4567][a-z]?$/.test(id) && id !== '4t' ? id[0] : id)) return;
    say(`layer ${id}: ${what}`);
    const capture = opts.capture ? await startCapture(capturePorts) : undefined;
    try {
      const r = await f();
      if (capture) r.nagle = nagleStalls(await capture.stop(), classify);
      rows.push({ layer: id, what, ...r });
      say(
        `  p50 ${r.p50.toFixed(1)} ms, p95 ${r.p95.toFixed(1)} ms (${r.n} back, ${r.lost} lost)${r.nagle ? `; Nagle stalls ${JSON.stringify(r.nagle)}` : ''}`,
      );
    } catch (err) {
      await capture?.stop();
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
  if (opts.layers.includes('5')) {
    await run('5a', 'coturn: TURN/TCP through a Tor stream (channel to UDP echo) [as 2]', async () =>
      echoLayer(tcpTransport(await torStream(tor, '127.0.0.1', coturn.port)), cot(), udpEcho),
    );
    await run('5b', 'coturn: two TURN/TCP clients through Tor streams, relay to relay [as 4t]', async () =>
      pairLayer(async () => tcpTransport(await torStream(tor, '127.0.0.1', coturn.port)), cot()),
    );
  }
  if (opts.layers.includes('7')) {
    const srv = bridge.server.port;
    await run('7a', '4t with a 60-byte datagram 2 ms before each ping, each client on its own circuit', async () =>
      pairLayer(async () => tcpTransport(await torStream(tor, '127.0.0.1', srv)), oc, LEAD),
    );
    await run('7b', '7a with both clients on one circuit (one SOCKS isolation)', async () =>
      pairLayer(async () => tcpTransport(await torStream(tor, '127.0.0.1', srv, `rtt-shared-${process.pid}`)), oc, LEAD),
    );
    await run('7c', '4t (no lead datagram) with both clients on one circuit', async () =>
      pairLayer(async () => tcpTransport(await torStream(tor, '127.0.0.1', srv, `rtt-shared2-${process.pid}`)), oc),
    );
  }
  if (opts.layers.includes('6')) {
    const browser = await CallBrowser.start();
    closers.push(() => browser.close());
    const forwarder = await startSocksForwarder({ socksPort: tor.socksPort, host: '127.0.0.1', port: coturn.port });
    closers.push(forwarder.close);
    const isolatedForwarder = await startSocksForwarder({ socksPort: tor.socksPort, host: '127.0.0.1', port: coturn.port, isolation: 'connection' });
    closers.push(isolatedForwarder.close);
    const sharedShim = await bridge.addShim(bridge.server, { isolation: 'shared' });
    const pings = Math.max(10, Math.round(opts.seconds * 8));
    const dc = async (iceServers) => {
      const r = await browser.benchCall({ iceServers, seconds: 1, idlePings: pings, setupTimeoutMs: 90_000 });
      if (r.error) throw new Error(r.error);
      const x = r.idleRttMs;
      return {
        n: x.length,
        lost: pings - x.length,
        p50: pct(x, 50),
        p95: pct(x, 95),
        min: Math.min(...x),
        max: Math.max(...x),
        mean: x.reduce((a, b) => a + b, 0) / x.length,
      };
    };
    await run('6a', `Chromium data channel through the shim (relay/udp; ${pings} idle pings, as bench:call's rttIdleMs)`, () =>
      dc([{ urls: `turn:127.0.0.1:${bridge.shim.port}?transport=udp`, username: oc.username, credential: oc.password }]),
    );
    await run('6b', 'Chromium data channel by hand: TURN/TCP to a SOCKS forwarder to coturn', () => {
      const c = cot();
      return dc([{ urls: `turn:127.0.0.1:${forwarder.port}?transport=tcp`, username: c.username, credential: c.password }]);
    });
    await run('6c', 'Chromium data channel through a shim with --isolation shared (both peers on one circuit)', () =>
      dc([{ urls: `turn:127.0.0.1:${sharedShim.port}?transport=udp`, username: oc.username, credential: oc.password }]),
    );
    await run('6d', 'Chromium data channel by hand, a circuit per TURN connection (SOCKS isolation per connection)', () => {
      const c = cot();
      return dc([{ urls: `turn:127.0.0.1:${isolatedForwarder.port}?transport=tcp`, username: c.username, credential: c.password }]);
    });
  }
  console.log(`\nrtt-breakdown, profile ${profile.name}: ${opts.size}-byte datagrams at ${opts.rate}/s, ${opts.seconds} s per layer; round trip in ms`);
  console.log(`${'layer'.padEnd(6)}${'p50'.padStart(7)}${'p95'.padStart(7)}${'min'.padStart(7)}${'max'.padStart(7)}${'lost'.padStart(6)}  path`);
  const stallText = (n) =>
    Object.entries(n)
      .map(([k, v]) => `${k} ${v.count}x ${(v.ms / v.count).toFixed(0)} ms`)
      .join(', ') || 'none';
  for (const r of rows) {
    if (r.error) console.log(`${r.layer.padEnd(6)}${'error'.padStart(7)}  ${r.what}: ${r.error}`);
    else
      console.log(
        `${r.layer.padEnd(6)}${r.p50.toFixed(1).padStart(7)}${r.p95.toFixed(1).padStart(7)}${r.min.toFixed(1).padStart(7)}${r.max.toFixed(1).padStart(7)}${String(r.lost).padStart(6)}  ${r.what}`,
      );
    if (r.nagle) console.log(`${' '.repeat(40)}Nagle stalls (data held for a delayed ACK; mean ACK delay): ${stallText(r.nagle)}`);
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

/** Runs this script again inside a namespace of its own with quickack loopback routes; its exit code. */
async function inQuickackNamespace() {
  const { NetNamespace } = await import('@onionturn/testkit');
  const ns = NetNamespace.create([]);
  try {
    // Both local routes: a socket to 127.0.0.1 takes the /32 one.
    for (const dst of ['127.0.0.0/8', '127.0.0.1'])
      ns.run(ns.ip, ['route', 'replace', 'local', dst, 'dev', 'lo', 'table', 'local', 'proto', 'kernel', 'scope', 'host', 'src', '127.0.0.1', 'quickack', '1']);
    console.log(`rtt-breakdown: in network namespace ${ns.name}, loopback routes with quickack 1`);
    const [bin, argv] = ns.wrap(process.execPath, process.argv.slice(1));
    const child = spawn(bin, argv, { stdio: 'inherit', env: { ...process.env, [NETNS_ENV]: ns.name } });
    const stop = () => child.kill('SIGINT');
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    return await new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  } finally {
    ns.delete();
  }
}

/**
 * A TCP forwarder on 127.0.0.1, each connection one SOCKS5 stream to host:port (the by-hand path,
 * as in bench-call.mjs: no SOCKS auth, so every connection shares a circuit); `isolate`: SOCKS
 * credentials per connection, so each gets a circuit of its own (as two users would).
 */
function connectTcp(port) {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}
