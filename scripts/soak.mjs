#!/usr/bin/env node
// `npm run soak -- [--minutes N] [--clients N] [--shim-clients N] [--rate N] [--json FILE] [--sample-seconds N]`
// Churning allocations through a real `onionturn server` process on loopback: each client
// allocates (401 then authenticated), permits and binds a channel to a local UDP echo peer,
// relays a datagram a second both ways (ChannelData and one Send indication), refreshes, and
// then releases (Refresh lifetime 0) or, one time in five, just drops its connection. New
// allocations are rate limited (--rate per second, default 50); the run stops by itself.
// Every sample (default each minute): server RSS and heap, open fds, allocations held, errors.
// At the end: the RSS slope over the last half of the run, per 10 minutes and as a share of the
// first sample, and the curve as a PNG (--png, default beside --json). Everything it starts is
// stopped by PID.
// Flows through the shim: --shim-clients of the clients (default a tenth) run the same cycle
// through `onionturn client` (pass-through mode, its TCP listener), which carries each one as a
// flow over a SOCKS5 stream (Debian's microsocks on loopback standing in for Tor) to the server;
// the shim's RSS and fds are sampled beside the server's, and its slope is reported too.
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { plotPng } from './png-plot.mjs';
import { prepare, root } from './prepare.mjs';

const USAGE = 'usage: npm run soak -- [--minutes N] [--clients N] [--shim-clients N] [--rate N] [--json FILE] [--png FILE] [--sample-seconds N]';
function parseArgs(argv) {
  const a = { minutes: 60, clients: 1000, shimClients: undefined, rate: 50, json: undefined, png: undefined, sampleSeconds: 60 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes('=') ? argv[i].split(/=(.*)/s) : [argv[i], undefined];
    const value = () => inline ?? argv[++i];
    const num = () => {
      const v = Number(value());
      if (!(v > 0)) throw new Error(`${flag} needs a positive number\n${USAGE}`);
      return v;
    };
    if (flag === '--minutes') a.minutes = num();
    else if (flag === '--clients') a.clients = Math.floor(num());
    else if (flag === '--shim-clients') {
      const v = Number(value());
      if (!(v >= 0)) throw new Error(`--shim-clients needs a number >= 0\n${USAGE}`);
      a.shimClients = Math.floor(v);
    } else if (flag === '--rate') a.rate = num();
    else if (flag === '--sample-seconds') a.sampleSeconds = num();
    else if (flag === '--json') a.json = value();
    else if (flag === '--png') a.png = value();
    else throw new Error(`unknown argument '${argv[i]}'\n${USAGE}`);
  }
  a.shimClients = Math.min(a.clients, a.shimClients ?? Math.ceil(a.clients / 10));
  return a;
}

const args = parseArgs(process.argv.slice(2));
await prepare('soak');
// The workspace's built code, imported once prepare() has built it (a fresh checkout has no dist yet).
const { restPassword } = await import('@onionturn/credentials');
const { AttributeType, MessageBuilder, MessageClass, Method, StreamFramer, FrameKind, decodeMessage, longTermKey, readAttribute, readText } =
  await import('@onionturn/protocol');
const { ProcessGroup, freePort, sleep, startMicrosocks, waitFor } = await import('@onionturn/testkit');

const SECRET = 'soak-secret-5c0f8a71';
const REALM = 'onionturn.soak';
const REPLY_TIMEOUT_MS = 10_000;
const group = new ProcessGroup();
const dir = mkdtempSync(join(tmpdir(), 'onionturn-soak-'));
const errors = new Map();
const counts = { cycles: 0, shimCycles: 0, released: 0, dropped: 0, sent: 0, echoed: 0 };
let stopping = false;

function error(kind) {
  errors.set(kind, (errors.get(kind) ?? 0) + 1);
}
const totalErrors = () => [...errors.values()].reduce((n, v) => n + v, 0);

// ---------------------------------------------------------------- server and peer

async function startServer() {
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const port = await freePort();
  const metricsPort = await freePort();
  const cli = join(root, 'packages/cli/bin/onionturn.js');
  const probe = pathToFileURL(join(root, 'scripts/soak-probe.mjs')).href;
  const argv = [
    '--import',
    probe,
    cli,
    'server',
    '--listen',
    `tcp://127.0.0.1:${port}`,
    '--realm',
    REALM,
    '--secret-file',
    secretFile,
    '--allow-loopback-peers',
    // One process: the RSS and heap probe (--import) sees the process it runs in, and a leak
    // shows there; workers would split the load over processes it cannot see.
    '--workers',
    '1',
    '--relay-ports',
    '40000-49999',
    '--max-allocations-per-user',
    '100000',
    '--metrics',
    `127.0.0.1:${metricsPort}`,
    '--log-level',
    'warn',
  ];
  const started = group.spawn('onionturn server', process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const heap = { used: NaN, total: NaN };
  started.child.on('message', (m) => {
    if (m && m.soakProbe) {
      heap.used = m.heapUsed;
      heap.total = m.heapTotal;
    }
  });
  await waitFor(
    'onionturn server to listen',
    async () => {
      if (started.child.exitCode !== null) throw new Error(`onionturn server exited: ${started.output()}`);
      const s = connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      try {
        await Promise.race([once(s, 'connect'), sleep(300).then(() => Promise.reject(new Error('timeout')))]);
        return true;
      } catch {
        return false;
      } finally {
        s.destroy();
      }
    },
    15_000,
  );
  return { port, metricsPort, pid: started.pid, heap, started };
}

/** The shim in pass-through mode on a loopback port, dialing the server through microsocks. */
async function startShim(serverPort) {
  const socks = await startMicrosocks(group);
  const port = await freePort();
  const started = group.spawn('onionturn client', process.execPath, [
    join(root, 'packages/cli/bin/onionturn.js'),
    'client',
    '--listen',
    `127.0.0.1:${port}`,
    '--server',
    `tcp://127.0.0.1:${serverPort}`,
    '--allow-plaintext-upstream',
    '--socks',
    `127.0.0.1:${socks.port}`,
    '--allow-non-tor-socks',
    '--no-status',
    // One loopback source carries all the soak's shim clients (a user has one app): the default
    // pacer (5 new flows/s per source) would make them queue, and the soak measures leaks, not the pacer.
    '--new-flows-per-second',
    '50',
    '--log-level',
    'warn',
  ]);
  await waitFor(
    'onionturn client to listen',
    () => {
      if (started.child.exitCode !== null) throw new Error(`onionturn client exited: ${started.output()}`);
      return started.output().includes(`turn:127.0.0.1:${port}`);
    },
    15_000,
  );
  return { port, pid: started.pid, started };
}

async function startEchoPeer() {
  const sock = createSocket('udp4');
  sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  return sock;
}

function scrapeAllocations(port) {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        const m = /^onionturn_allocations (\d+)/m.exec(body);
        resolve(m ? Number(m[1]) : NaN);
      });
    });
    req.on('error', () => resolve(NaN));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function openFds(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

// ---------------------------------------------------------------- one client

/** Admission of new allocations: at most `rate` per second over the whole run. */
const admission = (() => {
  let next = Date.now();
  return async () => {
    const now = Date.now();
    const at = Math.max(now, next);
    next = at + 1000 / args.rate;
    if (at > now) await sleep(at - now);
  };
})();

class TurnConn {
  constructor(port) {
    this.sock = connect(port, '127.0.0.1');
    this.waiting = new Map();
    this.closed = false;
    this.onChannelData = () => undefined;
    this.framer = new StreamFramer((frame, kind) => {
      if (kind === FrameKind.ChannelData) return this.onChannelData(frame);
      const d = decodeMessage(Buffer.from(frame));
      if (!d.ok) return error('undecodable-reply');
      const key = d.value.transactionId.toString('hex');
      const w = this.waiting.get(key);
      if (w) {
        this.waiting.delete(key);
        w.resolve(d.value);
      }
    });
    this.sock.on('data', (c) => {
      if (this.framer.push(c)) error('framing');
    });
    this.sock.on('error', () => undefined);
    this.sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiting.values()) w.reject(new Error('closed'));
      this.waiting.clear();
    });
  }
  async open() {
    await Promise.race([once(this.sock, 'connect'), sleep(REPLY_TIMEOUT_MS).then(() => Promise.reject(new Error('connect timeout')))]);
  }
  request(msg) {
    const key = msg.subarray(8, 20).toString('hex');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        reject(new Error('timeout'));
      }, REPLY_TIMEOUT_MS);
      this.waiting.set(key, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.sock.write(msg);
    });
  }
  close(graceful) {
    if (graceful) this.sock.end();
    else this.sock.destroy();
  }
}

function errorCode(msg) {
  const r = readAttribute(msg, AttributeType.ErrorCode);
  return r?.ok ? r.value.code : undefined;
}

async function cycle(port, peer, id, via) {
  const conn = new TurnConn(port);
  const username = `${Math.floor(Date.now() / 1000) + 3600}:soak${id}`;
  const key = longTermKey(username, REALM, restPassword(SECRET, username));
  let nonce;
  const build = (method, attrs, cls = MessageClass.Request) => {
    const b = new MessageBuilder(method, cls);
    for (const [t, v] of attrs) b.add(t, v);
    if (cls !== MessageClass.Request || nonce === undefined) return b.build();
    b.add(AttributeType.Username, { kind: 'text', text: username })
      .add(AttributeType.Realm, { kind: 'text', text: REALM })
      .add(AttributeType.Nonce, { kind: 'text', text: nonce });
    return b.build({ integrityKey: key });
  };
  const ok = async (what, method, attrs) => {
    const res = await conn.request(build(method, attrs));
    if (res.messageClass !== MessageClass.SuccessResponse) throw new Error(`${what} ${errorCode(res) ?? 'failed'}`);
    return res;
  };
  const peerAddr = { kind: 'address', address: { family: 'IPv4', address: '127.0.0.1', port: peer.address().port } };
  const transport = [AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }];
  try {
    await conn.open();
    const challenge = await conn.request(build(Method.Allocate, [transport]));
    if (errorCode(challenge) !== 401) throw new Error(`challenge ${errorCode(challenge) ?? 'missing'}`);
    nonce = readText(challenge, AttributeType.Nonce);
    await ok('allocate', Method.Allocate, [transport]);
    await ok('permission', Method.CreatePermission, [[AttributeType.XorPeerAddress, peerAddr]]);
    const channel = 0x4000 + (id % 0x1000);
    await ok('channel-bind', Method.ChannelBind, [
      [AttributeType.ChannelNumber, { kind: 'channel-number', channel }],
      [AttributeType.XorPeerAddress, peerAddr],
    ]);
    conn.onChannelData = () => counts.echoed++;
    const payload = Buffer.alloc(100, id & 0xff);
    const frame = Buffer.alloc(104);
    frame.writeUInt16BE(channel, 0);
    frame.writeUInt16BE(100, 2);
    payload.copy(frame, 4);
    const holdSeconds = 5 + Math.floor(Math.random() * 26);
    for (let s = 0; s < holdSeconds && !stopping && !conn.closed; s++) {
      if (s === 0)
        conn.sock.write(
          build(
            Method.Send,
            [
              [AttributeType.XorPeerAddress, peerAddr],
              [AttributeType.Data, { kind: 'bytes', bytes: payload }],
            ],
            MessageClass.Indication,
          ),
        );
      else conn.sock.write(frame);
      counts.sent++;
      if (s === Math.floor(holdSeconds / 2)) await ok('refresh', Method.Refresh, [[AttributeType.Lifetime, { kind: 'uint32', value: 600 }]]);
      else await sleep(1000);
    }
    if (conn.closed) throw new Error('server closed the connection');
    if (Math.random() < 0.2) {
      counts.dropped++;
      conn.close(false);
    } else {
      if (!stopping) await ok('release', Method.Refresh, [[AttributeType.Lifetime, { kind: 'uint32', value: 0 }]]);
      counts.released++;
      conn.close(true);
    }
    counts.cycles++;
    if (via === 'shim') counts.shimCycles++;
  } catch (e) {
    if (!stopping) error(`${via === 'shim' ? 'shim: ' : ''}${e instanceof Error ? e.message.replace(/\d{4,}/g, 'N') : String(e)}`);
    conn.close(false);
  }
}

async function client(port, peer, index, via) {
  let n = 0;
  while (!stopping) {
    await admission();
    if (stopping) break;
    await cycle(port, peer, index * 100_000 + n++, via);
  }
}

// ---------------------------------------------------------------- run

function slope(points) {
  // Least squares: y = a + b x.
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  const sxy = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  return sxx === 0 ? NaN : sxy / sxx;
}

/** Shim clients spread evenly among the others, so the first second's admissions are not all through the shim. */
function isShimClient(i) {
  if (args.shimClients <= 0) return false;
  const every = args.clients / args.shimClients;
  return Math.floor(i / every) !== Math.floor((i - 1) / every);
}

async function main() {
  const server = await startServer();
  const shim = args.shimClients > 0 ? await startShim(server.port) : undefined;
  const peer = await startEchoPeer();
  const started = Date.now();
  const samples = [];
  console.log(
    `soak: ${args.minutes} min, ${args.clients} clients (${args.shimClients} through the shim), at most ${args.rate} new allocations/s, server pid ${server.pid}${shim ? `, shim pid ${shim.pid}` : ''}`,
  );
  const clients = Array.from({ length: args.clients }, (_, i) =>
    isShimClient(i) && shim ? client(shim.port, peer, i, 'shim') : client(server.port, peer, i, 'server'),
  );
  const end = started + args.minutes * 60_000;
  const sample = async () => {
    const s = {
      minute: Number(((Date.now() - started) / 60_000).toFixed(2)),
      rssMb: Number(rssMb(server.pid).toFixed(1)),
      heapUsedMb: Number((server.heap.used / 2 ** 20).toFixed(1)),
      heapTotalMb: Number((server.heap.total / 2 ** 20).toFixed(1)),
      fds: openFds(server.pid),
      allocations: await scrapeAllocations(server.metricsPort),
      errors: totalErrors(),
      cycles: counts.cycles,
      sent: counts.sent,
      echoed: counts.echoed,
      ...(shim ? { shimCycles: counts.shimCycles, shimRssMb: Number(rssMb(shim.pid).toFixed(1)), shimFds: openFds(shim.pid) } : {}),
    };
    samples.push(s);
    console.log(`soak: ${JSON.stringify(s)}`);
  };
  while (Date.now() < end) {
    await sleep(Math.min(args.sampleSeconds * 1000, Math.max(0, end - Date.now())));
    if (server.started.child.exitCode !== null) {
      error('server exited');
      break;
    }
    if (shim && shim.started.child.exitCode !== null) {
      error('shim exited');
      break;
    }
    await sample();
  }
  stopping = true;
  await Promise.race([Promise.all(clients), sleep(15_000)]);
  await group.stopAll();
  peer.close();
  rmSync(dir, { recursive: true, force: true });

  const half = samples.filter((s) => s.minute >= args.minutes / 2);
  const mbPerMin = slope(half.map((s) => ({ x: s.minute, y: s.rssMb })));
  const start = samples[0]?.rssMb ?? NaN;
  const shimMbPerMin = slope(half.filter((s) => Number.isFinite(s.shimRssMb)).map((s) => ({ x: s.minute, y: s.shimRssMb })));
  const shimStart = samples[0]?.shimRssMb ?? NaN;
  const result = {
    minutes: args.minutes,
    clients: args.clients,
    ratePerSecond: args.rate,
    errors: totalErrors(),
    errorKinds: Object.fromEntries(errors),
    cycles: counts.cycles,
    shimClients: args.shimClients,
    shimCycles: counts.shimCycles,
    released: counts.released,
    droppedWithoutRelease: counts.dropped,
    datagramsSent: counts.sent,
    datagramsEchoed: counts.echoed,
    rssSlope: {
      overLastHalfMinutes: half.length > 0 ? [half[0].minute, half.at(-1).minute] : [],
      mbPer10Min: Number((mbPerMin * 10).toFixed(3)),
      pctOfStartPer10Min: Number(((100 * mbPerMin * 10) / start).toFixed(3)),
    },
    ...(shim
      ? {
          shimRssSlope: {
            mbPer10Min: Number((shimMbPerMin * 10).toFixed(3)),
            pctOfStartPer10Min: Number(((100 * shimMbPerMin * 10) / shimStart).toFixed(3)),
          },
        }
      : {}),
    samples,
  };
  console.log('\n| minute | RSS MB | heap used MB | fds | allocations | errors | cycles | shim cycles | shim RSS MB | shim fds |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const s of samples)
    console.log(
      `| ${s.minute} | ${s.rssMb} | ${s.heapUsedMb} | ${s.fds} | ${s.allocations} | ${s.errors} | ${s.cycles} | ${s.shimCycles ?? '-'} | ${s.shimRssMb ?? '-'} | ${s.shimFds ?? '-'} |`,
    );
  console.log(
    `\nsoak: ${result.cycles} allocations churned (${result.released} released, ${result.droppedWithoutRelease} dropped), ${result.datagramsEchoed}/${result.datagramsSent} datagrams echoed, ${result.errors} errors ${JSON.stringify(result.errorKinds)}`,
  );
  console.log(
    `soak: RSS slope over the last half: ${result.rssSlope.mbPer10Min} MB per 10 min = ${result.rssSlope.pctOfStartPer10Min}% of the start per 10 min`,
  );
  if (result.shimRssSlope)
    console.log(
      `soak: shim (${result.shimCycles} flows churned) RSS slope over the last half: ${result.shimRssSlope.mbPer10Min} MB per 10 min = ${result.shimRssSlope.pctOfStartPer10Min}% of the start per 10 min`,
    );
  if (args.json) writeFileSync(args.json, JSON.stringify(result, null, 2) + '\n');
  // RSS in red, heap used in blue, against minutes; the y axis starts at 0 MB.
  const png = args.png ?? (args.json ? args.json.replace(/\.json$/, '') + '.png' : undefined);
  if (png && samples.length > 1) {
    writeFileSync(
      png,
      plotPng([
        { color: [200, 30, 30], points: samples.map((s) => ({ x: s.minute, y: s.rssMb })) },
        { color: [30, 30, 200], points: samples.filter((s) => Number.isFinite(s.heapUsedMb)).map((s) => ({ x: s.minute, y: s.heapUsedMb })) },
      ]),
    );
    console.log(`soak: RSS (red) and heap used (blue) over minutes in ${png}`);
  }
  process.exitCode = result.errors > 0 ? 1 : 0;
}

main().catch(async (e) => {
  console.error(`soak: ${e instanceof Error ? e.stack : String(e)}`);
  stopping = true;
  await group.stopAll();
  rmSync(dir, { recursive: true, force: true });
  process.exitCode = 2;
});
