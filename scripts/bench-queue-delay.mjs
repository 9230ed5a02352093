// Delay bounded in time (issue 14, deliverable 3), tried as a user would: coturn's
// turnutils_uclient (no congestion control, 1000-byte messages, UDP to the shim) through the shim,
// a private Tor network whose relays are limited with tor's BandwidthRate, and `onionturn server`
// to turnutils_peer (an echo). Near the path's capacity and at twice it, with
// --max-queue-delay-ms at its default with the shim-server delay extension (the default) and
// without it (server --no-delay-feedback), and at 0 (both ends), one after the other on the same
// network: average and max RTT and loss as uclient reports them, and what each end dropped as stale.
//   node scripts/bench-queue-delay.mjs [--rate-kbps 614.4] [--seconds 30] [--near 30] [--over 75] [--bound 150] [--constrained 0|1] [--configs 7]
// --configs: a bit mask of the rows to run: 1 the bound with the delay extension, 2 the bound
// without it (server --no-delay-feedback), 4 bytes only (default 7: all).
// --near/--over: messages per second (each 1000 bytes each way). --constrained 1: every tor with
// ConstrainedSockets (8 KiB socket buffers), to see how much of the delay sits in kernel buffers.
import { readFileSync } from 'node:fs';
import { prepare } from './prepare.mjs';

const opts = { rateKbps: 614.4, seconds: 30, near: 30, over: 75, bound: 150, constrained: 0, configs: 7 };
for (let i = 2; i < process.argv.length; i += 2) {
  const [flag, value] = [process.argv[i], process.argv[i + 1]];
  const key = {
    '--rate-kbps': 'rateKbps',
    '--seconds': 'seconds',
    '--near': 'near',
    '--over': 'over',
    '--bound': 'bound',
    '--constrained': 'constrained',
    '--configs': 'configs',
  }[flag];
  if (key === undefined || !Number.isFinite(Number(value))) {
    console.log('usage: node scripts/bench-queue-delay.mjs [--rate-kbps K] [--seconds N] [--near MSG/S] [--over MSG/S] [--bound MS]');
    process.exit(2);
  }
  opts[key] = Number(value);
}
await prepare();
const { ProcessGroup, metricSum, requireTool, TOOLS, startBridge, startTurnutilsPeer } = await import('@onionturn/testkit');

const say = (m) => console.log(`bench:queue-delay: ${m}`);
const profile = {
  name: 'rate-limited',
  description: `unshaped loopback links, every relay limited to ${opts.rateKbps} kbit/s by its BandwidthRate`,
  link: undefined,
  relayRateKbps: opts.rateKbps,
  onion: false,
  bulkDownload: false,
  targetCircuitRttMs: 8,
  ...(opts.constrained ? { torrc: ['ConstrainedSockets 1', 'ConstrainedSockSize 8192'] } : {}),
};
const group = new ProcessGroup();
const bridge = await startBridge({
  profile,
  server: { allowLoopbackPeers: true, args: ['--max-queue-delay-ms', String(opts.bound)] },
  args: ['--max-queue-delay-ms', String(opts.bound)],
  progress: say,
});

/** uclient's summary: sent/received, loss, average and max round trip. */
function parse(text) {
  const last = (re) => {
    let v;
    for (const m of text.matchAll(re)) v = m;
    return v;
  };
  const totals = last(/tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/g);
  const lost = last(/Total lost packets (\d+) \(([\d.]+)%\)/g);
  const rtt = last(/Average round trip delay ([\d.]+) ms; min = (\d+) ms, max = (\d+) ms/g);
  return {
    sent: totals ? Number(totals[1]) : NaN,
    received: totals ? Number(totals[2]) : NaN,
    lossPct: lost ? Number(lost[2]) : NaN,
    rttAvg: rtt ? Number(rtt[1]) : NaN,
    rttMax: rtt ? Number(rtt[3]) : NaN,
  };
}

function uclient(port, peerPort, secret, perSecond) {
  const bin = requireTool(TOOLS.turnutilsUclient);
  const interval = Math.max(1, Math.round(1000 / perSecond));
  const messages = Math.round(opts.seconds * (1000 / interval));
  const args = [
    '-c',
    '-W',
    secret,
    '-e',
    '127.0.0.1',
    '-r',
    String(peerPort),
    '-n',
    String(messages),
    '-m',
    '1',
    '-l',
    '1000',
    '-z',
    String(interval),
    '-p',
    String(port),
    '127.0.0.1',
  ];
  return new Promise((resolve) => {
    const started = group.spawn('turnutils_uclient', bin, args);
    let out = '';
    started.child.stdout?.on('data', (c) => (out += c));
    started.child.stderr?.on('data', (c) => (out += c));
    const timer = setTimeout(() => started.child.kill('SIGKILL'), (opts.seconds + 60) * 1000);
    started.child.on('close', () => {
      clearTimeout(timer);
      resolve({ ...parse(out), perSecond: 1000 / interval, tail: out.slice(-600) });
    });
  });
}

const rows = [];
try {
  const secret = readFileSync(bridge.secretFile, 'utf8').trim();
  const peer = await startTurnutilsPeer(group);
  const offServer = await bridge.addServer({ allowLoopbackPeers: true, args: ['--max-queue-delay-ms', '0'] });
  const offShim = await bridge.addShim(offServer, { args: ['--max-queue-delay-ms', '0'] });
  // The time bound without the shim-server delay extension (issue 14): the server never echoes the offer.
  const noExtServer = await bridge.addServer({ allowLoopbackPeers: true, args: ['--max-queue-delay-ms', String(opts.bound), '--no-delay-feedback'] });
  const noExtShim = await bridge.addShim(noExtServer, { args: ['--max-queue-delay-ms', String(opts.bound)] });
  const serverMetric = async (server, name, label = '') => metricSum(await server.metrics(), name, label);
  const shimStale = async (statusPort) =>
    metricSum(await (await globalThis.fetch(`http://127.0.0.1:${statusPort}/metrics`)).text(), 'onionturn_client_dropped_total', 'reason="stale"');
  const serverStale = async (server) => metricSum(await server.metrics(), 'onionturn_dropped_total', 'reason="stale"');
  const circuit = await bridge.tor.measureCircuitRtt(5, false);
  say(`idle circuit RTT (bare stream echo) ${circuit.toFixed(0)} ms`);
  for (const [load, perSecond] of [
    ['near capacity', opts.near],
    ['twice capacity', opts.over],
  ]) {
    for (const [bound, server, shim] of [
      [`${opts.bound} ms + ext`, bridge.server, bridge.shim],
      [`${opts.bound} ms, no ext`, noExtServer, noExtShim],
      ['0 (bytes only)', offServer, offShim],
    ].filter((_, i) => (opts.configs & (1 << i)) !== 0)) {
      const before = { shim: await shimStale(shim.statusPort), server: await serverStale(server) };
      const reportsBefore = await serverMetric(server, 'onionturn_delay_feedback_reports_total');
      say(`${load}: ${perSecond}/s of 1000 bytes for ${opts.seconds} s, --max-queue-delay-ms ${bound}`);
      const r = await uclient(shim.port, peer.port, secret, perSecond);
      const staleShim = (await shimStale(shim.statusPort)) - before.shim;
      const staleServer = (await serverStale(server)) - before.server;
      const reports = (await serverMetric(server, 'onionturn_delay_feedback_reports_total')) - reportsBefore;
      const staleArrival = await serverMetric(server, 'onionturn_dropped_total', 'reason="stale-arrival"');
      rows.push({ load, bound, ...r, staleShim, staleServer });
      say(
        `  sent ${r.sent} received ${r.received} loss ${r.lossPct}% rtt avg ${r.rttAvg} ms max ${r.rttMax} ms; stale: shim ${staleShim}, server ${staleServer}; delay reports at the server ${reports}, stale on arrival (server, total) ${staleArrival}`,
      );
      if (Number.isNaN(r.rttAvg)) say(`  uclient said: ${r.tail}`);
    }
  }
  console.log(
    `\nbench:queue-delay: relays at ${opts.rateKbps} kbit/s (BandwidthRate)${opts.constrained ? ', ConstrainedSockets 8 KiB' : ''}, idle circuit RTT ${circuit.toFixed(0)} ms, uclient 1000-byte messages over UDP to the shim, ${opts.seconds} s each`,
  );
  console.log(
    `${'load'.padEnd(15)} ${'msg/s'.padStart(6)} ${'bound'.padEnd(15)} ${'sent'.padStart(5)} ${'recv'.padStart(5)} ${'loss%'.padStart(6)} ${'rtt avg'.padStart(8)} ${'rtt max'.padStart(8)} ${'stale shim'.padStart(10)} ${'stale srv'.padStart(10)}`,
  );
  for (const r of rows) {
    console.log(
      `${r.load.padEnd(15)} ${r.perSecond.toFixed(0).padStart(6)} ${r.bound.padEnd(15)} ${String(r.sent).padStart(5)} ${String(r.received).padStart(5)} ${String(r.lossPct).padStart(6)} ${String(r.rttAvg).padStart(8)} ${String(r.rttMax).padStart(8)} ${String(r.staleShim).padStart(10)} ${String(r.staleServer).padStart(10)}`,
    );
  }
} finally {
  await group.stopAll();
  await bridge.stop();
}
