#!/usr/bin/env node
// `npm run bench:call`: a relay-only Chromium call (fake 640x480 video + audio from peer a to
// peer b, and a data channel) over a shaped private Tor network (packages/lab lab profiles),
// two ways side by side in one run:
//   onionturn  browser --TURN/UDP--> onionturn client (shim) --SOCKS--> Tor --> onionturn server
//   by-hand    browser --TURN/TCP--> local TCP forwarder --SOCKS--> Tor --> coturn
// (the by-hand path is what users do today: TURN/TCP through a SOCKS forwarder such as socat).
// Its forwarder gives each connection a SOCKS username of its own, so each peer's TURN connection
// has a circuit of its own, as two users on two machines would (the shim does the same per flow);
// sharing one circuit made the by-hand path look better than it is (its return traffic carried the
// other peer's ACKs: 53 vs 74 ms data-channel RTT on `ideal`, `npm run bench:rtt` rows 6b/6d).
// Both peers use the same server, so every packet crosses Tor twice (a -> server -> b). On the
// onionturn path each peer has a shim of its own, as two users on two machines do (each keeps its
// own stream ready); the by-hand forwarder keeps nothing ready, so one serves both. A profile
// with a second user's tor (tor-congested: its congested relay is on peer a's circuits only) gives
// peer b a shim and a forwarder on that tor; --cut-at then cuts peer a's streams only.
// Everything runs on loopback, started and stopped here by PID; Ctrl-C stops it all.
//   --profile NAME   lab profile: ideal (default), tor-typical, tor-congested, tor-onion
//   --seconds N      media seconds per call (default 60)
//   --runs N         calls per path (default 3); each row is the median over runs
//   --json FILE      also write {"profile", "rows": [...]} to FILE
//   --cut-at S       S seconds into the media, cut the Tor stream(s) carrying the call on each path
//                    (tor's CLOSESTREAM: onionturn's shim-to-server streams, the by-hand forwarder's
//                    streams to coturn) and measure until video is decoded again (cutRecoverMs,
//                    null = never within the run). The onionturn path then uses a second shim in
//                    local-credential mode: only a shim that signs the allocation itself can take
//                    it over on a new stream (TURN mobility, RFC 8016).
//   --paths LIST     which paths to call, comma-separated (default onionturn,by-hand): one alone
//                    while trying a change; the side-by-side ratios need both
//   --trace DIR      the onionturn path's server and shims log at debug level (with the delay
//                    extension's state once a second per stream: 'delay-state'); their output
//                    goes to DIR/server-runN.log, DIR/shim-a-runN.log, DIR/shim-b-runN.log after each call
//   --no-delay-feedback  the onionturn path without the shim<->server delay extension (both
//                    ends started with --no-delay-feedback), to compare with it on
//   --onionturn-args "FLAGS"  more flags for the onionturn path's server and shims alike (e.g.
//                    "--max-queue-delay-ms 400"), to try a setting without a rebuild; only flags
//                    both commands take
//   --compare DIR    a third path, `compare`: another checkout's build (DIR, after npm ci and
//                    tsc -b there) as a server and two shims of their own on the same Tor network,
//                    its calls taking turns with this checkout's (paths default to
//                    onionturn,compare). An A/B of two codes in one run: the spread between runs
//                    of the same code on tor-congested (fps 6.5-7.6, freezes 6-9 across an hour)
//                    is as wide as the changes tried; taking turns, both codes meet the same drift.
//                    On an onion profile the compare server is served by the same onion
//                    service on a port of its own. Not with --cut-at.
// After each call a `sender:` line says what peer a's Chromium did (getStats of its video and
// audio outbound-rtp and of b's inbound video): whether a difference between the paths is the
// encoder's (its target bitrate, frames encoded), retransmissions (NACKs answered), or loss.
import { createHmac, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepare } from './prepare.mjs';

function parseArgs(argv) {
  const o = {
    profile: 'ideal',
    seconds: 60,
    runs: 3,
    json: undefined,
    cutAt: undefined,
    delayFeedback: true,
    paths: ['onionturn', 'by-hand'],
    trace: undefined,
    onionturnArgs: [],
    compare: undefined,
  };
  let pathsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const eq = argv[i].indexOf('=');
    const [flag, inline] = eq < 0 ? [argv[i], undefined] : [argv[i].slice(0, eq), argv[i].slice(eq + 1)];
    const value = () => inline ?? argv[++i];
    if (flag === '--profile') o.profile = value();
    else if (flag === '--seconds') o.seconds = Number(value());
    else if (flag === '--runs') o.runs = Number(value());
    else if (flag === '--json') o.json = value();
    else if (flag === '--cut-at') o.cutAt = Number(value());
    else if (flag === '--no-delay-feedback') o.delayFeedback = false;
    else if (flag === '--paths') {
      o.paths = value().split(',');
      pathsGiven = true;
    } else if (flag === '--compare') o.compare = value();
    else if (flag === '--trace') o.trace = value();
    else if (flag === '--onionturn-args') o.onionturnArgs = value().split(/\s+/).filter(Boolean);
    else if (flag === '--help' || flag === '-h') {
      console.log(
        'usage: npm run bench:call -- [--profile NAME] [--seconds N] [--runs N] [--json FILE] [--cut-at SECONDS] [--paths onionturn,by-hand] [--trace DIR] [--no-delay-feedback] [--onionturn-args "FLAGS"] [--compare DIR]',
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (o.compare !== undefined) {
    const bin = join(resolve(o.compare), 'packages', 'cli', 'bin', 'onionturn.js');
    if (!existsSync(bin) || !existsSync(join(resolve(o.compare), 'packages', 'cli', 'dist')))
      throw new Error(`--compare ${o.compare}: no built onionturn checkout there (run npm ci and npx tsc -b in it)`);
    if (o.cutAt !== undefined) throw new Error('--compare and --cut-at do not go together');
    o.compareBin = bin;
    if (!pathsGiven) o.paths = ['onionturn', 'compare'];
  }
  const known = ['onionturn', 'by-hand', ...(o.compare === undefined ? [] : ['compare'])];
  if (o.paths.length === 0 || o.paths.some((p) => !known.includes(p))) throw new Error(`--paths takes ${known.join(', ')} (comma-separated)`);
  if (!(o.seconds > 0) || !Number.isInteger(o.runs) || o.runs < 1) throw new Error('--seconds must be > 0 and --runs a positive integer');
  if (o.cutAt !== undefined && !(o.cutAt > 0 && o.cutAt < o.seconds - 3))
    throw new Error('--cut-at must be > 0 and at least 3 s before the end of the media (--seconds)');
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  // A bad flag: one line saying what is wrong, exit 2 (as the other benchmarks do).
  console.error(`bench:call: ${err.message} (--help lists the flags)`);
  process.exit(2);
}
await prepare('bench:call');
const {
  CallBrowser,
  LAB_NAMESPACE_ENV,
  ProcessGroup,
  cutRecovery,
  freePort,
  labProfile,
  median,
  runInLabNamespace,
  startBridge,
  startCoturn,
  startSocksForwarder,
  videoLagMs,
} = await import('@onionturn/testkit');
const profile = labProfile(opts.profile);
// The onionturn path's server and shims: with --no-delay-feedback both ends refuse the extension;
// with --trace both log at debug level; --onionturn-args adds to both.
const pathArgs = [...(opts.delayFeedback ? [] : ['--no-delay-feedback']), ...(opts.trace ? ['--log-level', 'debug'] : []), ...opts.onionturnArgs];
const offArgs = { server: { args: pathArgs }, args: pathArgs };
if (profile.namespace && !process.env[LAB_NAMESPACE_ENV]) {
  // This profile's loopback differs from the host's (small TCP buffers): run it all in a namespace.
  const n = profile.namespace;
  console.log(`bench:call: profile ${profile.name} runs in a network namespace of its own (lo MTU ${n.mtu}, tcp_rmem ${n.tcpRmem}, tcp_wmem ${n.tcpWmem})`);
  process.exit(await runInLabNamespace(n, fileURLToPath(import.meta.url), process.argv.slice(2)));
}

const t0 = Date.now();
const say = (m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}`);

/** Nearest-rank percentile. */
function pct(xs, p) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function coturnCredential(secret) {
  const username = `${Math.floor(Date.now() / 1000) + 3600}:bench`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}

/** One call's row from the page's raw measurements. */
function toRow(path, r, circuitRttMs) {
  const secs = r.mediaSeconds || NaN;
  const lag = videoLagMs(r.videoFrames);
  return {
    path,
    setupMs: r.setupMs,
    setupRtts: r.setupMs / circuitRttMs,
    rttIdleMs: median(r.idleRttMs),
    rttMsP50: pct(r.rtcpRttMs, 50),
    rttMsP95: pct(r.rtcpRttMs, 95),
    jitterMs: median(r.jitterMs),
    fps: r.framesDecoded / secs,
    freezes: r.freezeCount,
    freezeMs: r.freezeMs,
    concealedPct: r.totalSamples > 0 ? (100 * r.concealedSamples) / r.totalSamples : NaN,
    kbps: (r.bytesReceived * 8) / secs / 1000,
    dcRttMsP50: pct(r.dcRttMs, 50),
    dcRttMsP95: pct(r.dcRttMs, 95),
    videoLagMsP50: pct(lag, 50),
    videoLagMsP95: pct(lag, 95),
    videoPacerMs: r.sender.videoPacerMs ?? NaN,
    dcLost: r.dcLost,
    ...(r.cutAtMs === undefined ? {} : cutFields(r)),
  };
}

/** What peer a's encoder and pacer did during the media (why b saw what it saw), one line. */
function senderLine(s, secs) {
  const kbps = (bytes) => ((bytes * 8) / secs / 1000).toFixed(0);
  const med = (xs) => (xs.length > 0 ? (median(xs) / 1000).toFixed(0) : '-');
  const ms = (x) => (typeof x === 'number' ? x.toFixed(0) : '-');
  return (
    `video sent ${kbps(s.videoBytesSent)} kbit/s payload (of it retransmitted ${kbps(s.retransmittedBytesSent)}) + ${kbps(s.videoHeaderBytesSent)} headers and padding, ` +
    `audio ${kbps(s.audioBytesSent)} + ${kbps(s.audioHeaderBytesSent)}; frames encoded ${(s.framesEncoded / secs).toFixed(1)}/s, key frames ${s.keyFramesEncoded}; ` +
    `NACKs ${s.nacksReceived}, PLIs ${s.plisReceived}; b lost ${s.packetsLost} packets, decoded ${s.keyFramesDecoded} key frames; ` +
    `estimate (availableOutgoingBitrate) median ${med(s.availableOutgoingBitrate)} kbit/s, target ${med(s.targetBitrate)}; ` +
    `limited by bandwidth ${s.limitedBandwidthS.toFixed(0)} s, cpu ${s.limitedCpuS.toFixed(0)} s; ` +
    `waited in a's pacer (mean) video ${ms(s.videoPacerMs)} audio ${ms(s.audioPacerMs)} ms, in b's video jitter buffer ${ms(s.videoJitterBufferMs)} ms`
  );
}

/** The cut's figures of one call: recovery from the receiver's frame samples. */
function cutFields(r) {
  const rec = cutRecovery(r.frameSamples, r.cutAtMs);
  return {
    cutRecoverMs: rec.recoverMs ?? null,
    cutGapMs: rec.gapMs,
    cutStreams: r.cutStreams,
    iceAfterCut: r.iceAfterCut.map((e) => `${e.state}@${((e.at - r.cutAtMs) / 1000).toFixed(1)}s`).join(' '),
  };
}

const FIELDS = [
  'setupMs',
  'setupRtts',
  'rttIdleMs',
  'rttMsP50',
  'rttMsP95',
  'jitterMs',
  'fps',
  'freezes',
  'freezeMs',
  'concealedPct',
  'kbps',
  'dcRttMsP50',
  'dcRttMsP95',
  'dcLost',
  'videoLagMsP50',
  'videoLagMsP95',
  'videoPacerMs',
];
const DECIMALS = { setupRtts: 1, fps: 1, concealedPct: 2, jitterMs: 1 };
const round = (k, v) => (Number.isFinite(v) ? Number(v.toFixed(DECIMALS[k] ?? 0)) : null);

const CUT_FIELDS = ['cutRecoverMs', 'cutRecovered'];

function medianRow(path, rows) {
  const out = { path };
  for (const k of FIELDS) out[k] = round(k, median(rows.map((r) => r[k]).filter((v) => Number.isFinite(v))));
  out.runs = rows.length;
  if (rows.some((r) => 'cutRecoverMs' in r)) {
    // Median over the runs that recovered (null when none did); how many did; each run's value.
    const recovered = rows.map((r) => r.cutRecoverMs).filter((v) => v !== null && v !== undefined);
    out.cutRecoverMs = recovered.length > 0 ? round('x', median(recovered)) : null;
    out.cutRecovered = `${recovered.length}/${rows.length}`;
    out.cutRecoverRunsMs = rows.map((r) => (r.cutRecoverMs === null ? null : round('x', r.cutRecoverMs)));
    out.cutStreams = rows.map((r) => r.cutStreams);
  }
  return out;
}

function table(rows) {
  const cols = ['path', ...FIELDS, ...(rows.some((r) => 'cutRecoverMs' in r) ? CUT_FIELDS : []), ...(rows.some((r) => r.failed > 0) ? ['failed'] : [])];
  const cells = [cols, ...rows.map((r) => cols.map((c) => String(r[c] ?? '-')))];
  const widths = cols.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  return cells.map((row) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

/**
 * Counters of where the onionturn path drops or holds: `*_dropped_total` and the delay extension's
 * of the server and the given shim, by series, read from their /metrics (diffed around a call).
 */
async function dropCounters(server, shimStatusPorts) {
  const texts = await Promise.all([
    server.metrics().catch(() => ''),
    ...shimStatusPorts.map((port) =>
      globalThis
        .fetch(`http://127.0.0.1:${port}/metrics`)
        .then((r) => r.text())
        .catch(() => ''),
    ),
  ]);
  // Summed over the shims (one per peer); the server's and the shims' series have different names.
  const out = new Map();
  for (const text of texts) {
    for (const line of text.split('\n')) {
      const m = /^(\S*(?:dropped_total|delay_feedback\w*|ready_\w*_used_total)(?:\{[^}]*\})?) (\d+(?:\.\d+)?)$/.exec(line);
      if (m) {
        const key = m[1].replace(/^onionturn_/, '');
        out.set(key, (out.get(key) ?? 0) + Number(m[2]));
      }
    }
  }
  return out;
}

/** Prints the counters that moved since `before` (a dropCounters() reading). */
async function sayCountersMoved(path, before, server, shimStatusPorts) {
  say(`  ${path} drops and holds during the call: ${countersMoved(before, await dropCounters(server, shimStatusPorts)) || 'none'}`);
}

/** ms after createOffer at which a call reached each step of setup (undefined: never). */
function setupMarks(r) {
  return { relayA: r.setupSplit.relayA, relayB: r.setupSplit.relayB, ice: r.iceMs || undefined, dtls: r.setupSplit.dtls };
}

/** The counters that moved between two dropCounters() readings, as "series +n" (empty: none). */
function countersMoved(before, after) {
  return [...after]
    .map(([k, v]) => [k, v - (before.get(k) ?? 0)])
    .filter(([, d]) => d > 0)
    .map(([k, d]) => `${k} +${d}`)
    .join(', ');
}

const SECRET = 'bench-call-coturn-secret';
const group = new ProcessGroup();
let bridge;
let browser;
let forwarder;
let forwarderB;
let cleaning;
let bwControlRef;

/**
 * --trace: the output so far (the last 64 KiB each) of a path's server and shims (`ours`) into the
 * trace directory, names ending in `tag` (the compare path's starting with `compare-`).
 */
function dumpTrace(path, ours, tag) {
  if (!opts.trace) return;
  mkdirSync(opts.trace, { recursive: true });
  const { server, shims } = ours;
  const [a, b] = shims;
  const logs = { server: server.process, 'shim-a': a.process, ...(b ? { 'shim-b': b.process } : {}) };
  const prefix = path === 'compare' ? 'compare-' : '';
  for (const [name, p] of Object.entries(logs)) writeFileSync(`${opts.trace}/${prefix}${name}-${tag}.log`, p.output());
}
const cleanup = () =>
  (cleaning ??= (async () => {
    await browser?.close().catch(() => undefined);
    bwControlRef?.close();
    await forwarder?.close().catch(() => undefined);
    await forwarderB?.close().catch(() => undefined);
    await group.stopAll().catch(() => undefined);
    await bridge?.stop().catch(() => undefined);
  })());
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    say(`${sig}: stopping everything bench:call started`);
    void cleanup().then(() => process.exit(130));
  });
}

let exitCode = 0;
try {
  const coturnPort = await freePort();
  // On an onion profile the onion service also serves coturn's port and the compare server's.
  const comparePort = opts.compareBin !== undefined && profile.onion ? await freePort() : undefined;
  say(`profile ${profile.name}: ${profile.description}`);
  const extraOnionPorts = [coturnPort, ...(comparePort === undefined ? [] : [comparePort])];
  bridge = await startBridge({ profile, ...offArgs, ...(profile.onion ? { extraOnionPorts } : {}), progress: (m) => say(m) });
  const coturn = await startCoturn(group, { secrets: [SECRET], port: coturnPort, verbose: false });
  const coturnHost = profile.onion ? bridge.tor.onion.hostname : '127.0.0.1';
  forwarder = await startSocksForwarder({ socksPort: bridge.tor.socksPort, host: coturnHost, port: coturn.port, isolation: 'connection' });
  say(`by-hand path: forwarder 127.0.0.1:${forwarder.port} -> SOCKS ${bridge.tor.socksPort} -> coturn ${coturnHost}:${coturn.port}`);
  // A profile with a second user's tor: peer b's forwarder and shim use it.
  const secondTor = bridge.tor.secondClient;
  if (secondTor) {
    forwarderB = await startSocksForwarder({ socksPort: secondTor.socksPort, host: coturnHost, port: coturn.port, isolation: 'connection' });
    say(`by-hand path, peer b: forwarder 127.0.0.1:${forwarderB.port} -> the second user's SOCKS ${secondTor.socksPort} -> coturn`);
  }
  const circuitRtts = [];
  for (let i = 0; i < 3; i++) {
    try {
      circuitRtts.push(await bridge.tor.measureCircuitRtt(5, profile.onion));
    } catch (err) {
      say(`circuit round-trip probe failed: ${err.message}`);
    }
  }
  const circuitRttMs = median(circuitRtts);
  say(`circuit round trip (${profile.onion ? 'onion service' : 'exit'} path, bare stream echo): median ${circuitRttMs.toFixed(0)} ms`);
  browser = await CallBrowser.start({ ownSignals: true });
  // Peer b's own shim (a second user's machine), started like the bridge's.
  const shimB = await bridge.addShim(bridge.server, { args: pathArgs, onion: profile.onion, secondClient: secondTor !== undefined });
  // --compare: the other checkout's server and shims (peer a's, peer b's), on the same network and secret.
  let compare;
  if (opts.compareBin !== undefined) {
    let rev = 'unknown revision';
    try {
      rev = execFileSync('git', ['-C', opts.compare, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).trim();
    } catch {
      // not a git checkout: the path says which
    }
    say(`--compare: the compare path runs ${opts.compareBin} (${rev})`);
    const server = await bridge.addServer({ args: pathArgs, bin: opts.compareBin }, comparePort);
    const shimOf = (secondClient) => bridge.addShim(server, { args: pathArgs, bin: opts.compareBin, onion: profile.onion, secondClient });
    compare = { server, shims: [await shimOf(false), await shimOf(secondTor !== undefined)], rev };
  }
  // --cut-at: the onionturn calls go through local-credential shims, one per peer (mobility).
  let cutShims;
  if (opts.cutAt !== undefined) {
    const local = { user: 'bench', password: randomBytes(12).toString('hex') };
    const cutShim = (secondClient) => bridge.addShim(bridge.server, { args: pathArgs, localCredentials: local, onion: profile.onion, secondClient });
    cutShims = [await cutShim(false), await cutShim(secondTor !== undefined)];
    say(
      `--cut-at ${opts.cutAt}: onionturn calls use local-credential shims on 127.0.0.1:${cutShims.map((s) => s.port).join(' and ')} (TURN mobility after the cut)`,
    );
  }
  // Which streams carry traffic (tor's STREAM_BW events, once a second per busy stream): the cut
  // takes only those to the call's port that were busy in the last 2 s, not the streams of
  // earlier calls' allocations the shim still holds (idle until they expire).
  const busyAt = new Map();
  const bwControl = opts.cutAt === undefined ? undefined : await bridge.tor.control();
  bwControlRef = bwControl;
  await bwControl?.onEvents(['STREAM_BW'], (ev) => {
    const id = /^STREAM_BW (\S+)/.exec(ev.lines[0] ?? '')?.[1];
    if (id) busyAt.set(id, Date.now());
  });
  /** Closes the busy Tor streams to port (the call's), returns how many. */
  const cutStreamsTo = async (port) => {
    const control = await bridge.tor.control();
    try {
      const now = Date.now();
      const open = (await control.streams()).filter((s) => s.status === 'SUCCEEDED' && s.target.endsWith(`:${port}`));
      const busy = open.filter((s) => now - (busyAt.get(s.id) ?? 0) <= 2000);
      // No STREAM_BW seen for any of them: cut them all (the call's are among them).
      const victims = busy.length > 0 ? busy : open;
      let cut = 0;
      for (const v of victims) if ((await control.command(`CLOSESTREAM ${v.id} 1`).catch(() => ({ code: 0 }))).code === 250) cut++;
      return cut;
    } finally {
      control.close();
    }
  };

  const perPath = Object.fromEntries(opts.paths.map((p) => [p, []]));
  const failed = Object.fromEntries(opts.paths.map((p) => [p, 0]));
  for (let run = 0; run < opts.runs; run++) {
    // The paths take turns, each run in the other order.
    const order = run % 2 === 0 ? opts.paths : [...opts.paths].reverse();
    for (const path of order) {
      // The path's own server and shims (--cut-at: the local-credential ones; by-hand: none).
      const ours = path === 'compare' ? compare : path === 'onionturn' ? { server: bridge.server, shims: cutShims ?? [bridge.shim, shimB] } : undefined;
      let iceServers;
      let iceServersB;
      if (path === 'onionturn' && cutShims) {
        [iceServers, iceServersB] = cutShims.map((s) => [
          { urls: `turn:127.0.0.1:${s.port}?transport=udp`, username: s.local.username, credential: s.local.password },
        ]);
      } else if (ours) {
        const c = await bridge.credentials();
        [iceServers, iceServersB] = ours.shims.map((s) => [{ urls: `turn:127.0.0.1:${s.port}?transport=udp`, username: c.username, credential: c.password }]);
      } else {
        iceServers = [{ urls: `turn:127.0.0.1:${forwarder.port}?transport=tcp`, ...coturnCredential(SECRET) }];
        if (forwarderB) iceServersB = [{ urls: `turn:127.0.0.1:${forwarderB.port}?transport=tcp`, ...coturnCredential(SECRET) }];
      }
      say(`run ${run + 1}/${opts.runs}: ${path} call, ${opts.seconds} s of media`);
      const cutPort = path === 'onionturn' ? bridge.server.port : coturn.port;
      const shimStatusPorts = ours?.shims.map((s) => s.statusPort) ?? [];
      const countersBefore = ours ? await dropCounters(ours.server, shimStatusPorts) : undefined;
      const r = await browser.benchCall(
        {
          iceServers,
          ...(iceServersB ? { iceServersB } : {}),
          seconds: opts.seconds,
          setupTimeoutMs: 90_000,
          ...(opts.cutAt === undefined ? {} : { cutAtSeconds: opts.cutAt }),
        },
        opts.cutAt === undefined ? undefined : () => cutStreamsTo(cutPort),
      );
      if (ours) dumpTrace(path, ours, `run${run + 1}`);
      if (r.error) {
        // A call that does not set up (a congested profile) is a result, not the end of the bench.
        const reached = Object.entries(setupMarks(r))
          .map(([k, v]) => `${k} ${v === undefined ? 'never' : `${(v / 1000).toFixed(1)} s`}`)
          .join(', ');
        say(`  ${path} call failed: ${r.error}; reached ${reached}; candidate errors ${JSON.stringify(r.candidateErrors.slice(0, 3))}`);
        if (countersBefore) await sayCountersMoved(path, countersBefore, ours.server, shimStatusPorts);
        failed[path]++;
        continue;
      }
      const relay = r.pairs.map((p) => `${p.localType}/${p.relayProtocol}`).join(' + ');
      if (!r.pairs.every((p) => p.localType === 'relay' && p.remoteType === 'relay')) throw new Error(`${path}: not relay-only: ${JSON.stringify(r.pairs)}`);
      const row = toRow(path, r, circuitRttMs);
      perPath[path].push(row);
      say(`  ${path}: ${relay}; ${JSON.stringify(Object.fromEntries(FIELDS.map((k) => [k, round(k, row[k])])))}`);
      const split = Object.entries({ ...setupMarks(r), dc: r.setupMs })
        .map(([k, v]) => `${k} ${(v / circuitRttMs).toFixed(1)}`)
        .join(', ');
      say(`  ${path} setup in circuit round trips after createOffer: ${split}`);
      say(`  ${path} sender: ${senderLine(r.sender, r.mediaSeconds)}`);
      if (countersBefore) await sayCountersMoved(path, countersBefore, ours.server, shimStatusPorts);
      if (opts.cutAt !== undefined) {
        say(
          `  ${path} cut at ${(r.cutAtMs / 1000).toFixed(1)} s: ${row.cutStreams} stream(s) cut; video decoded again after ${row.cutRecoverMs === null ? 'never' : `${row.cutRecoverMs.toFixed(0)} ms`} (outage ${row.cutGapMs.toFixed(0)} ms); ICE after the cut: ${row.iceAfterCut || 'no change'}`,
        );
      }
    }
  }
  const rows = opts.paths.map((p) => ({ ...medianRow(p, perPath[p]), failed: failed[p] }));
  const result = {
    profile: profile.name,
    seconds: opts.seconds,
    runs: opts.runs,
    ...(opts.cutAt === undefined ? {} : { cutAt: opts.cutAt, onionturnMode: 'local-credential' }),
    delayFeedback: opts.delayFeedback,
    ...(compare ? { compare: { dir: resolve(opts.compare), rev: compare.rev } } : {}),
    circuitRttMs: round('x', circuitRttMs),
    rows,
  };
  console.log(`\nbench:call profile ${profile.name}: ${opts.runs} run(s) x ${opts.seconds} s media, median per row; circuit RTT ${circuitRttMs.toFixed(0)} ms`);
  console.log(table(rows));
  console.log(
    '\n  setupMs: createOffer to data channel open (setupRtts: the same in circuit round trips); rttIdleMs: data-channel ping before media;\n' +
      '  rttMs: RTCP remote-inbound-rtp roundTripTime (audio+video) under media; jitterMs: audio inbound jitter; fps: video frames decoded/s;\n' +
      '  freezes/freezeMs: video freezeCount/totalFreezesDuration; concealedPct: concealed audio samples; kbps: received audio+video;\n' +
      '  dcRttMs: data-channel pings every 500 ms under media (dcLost: no answer within 10 s);\n' +
      "  videoLagMs: how much later than the call's least delayed frame each video frame was shown (display time less RTP timestamp);\n" +
      "  videoPacerMs: how long the sender's video packets waited in its pacer, mean (outbound-rtp totalPacketSendDelay / packetsSent)",
  );
  if (opts.json) {
    writeFileSync(opts.json, JSON.stringify(result, null, 2) + '\n');
    say(`wrote ${opts.json}`);
  }
} catch (err) {
  console.error(`bench:call: ${err instanceof Error ? err.message : String(err)}`);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);
