#!/usr/bin/env node
// `npm run bench:udp`: iperf3 -u (Debian iperf3) through `onionturn client --forward` over the
// private Tor network, two paths side by side, at 1 and 4 Mbit/s; prints iperf3's own loss and jitter:
//   exit   iperf3 -c --UDP--> forward --Tor stream--> exit --> onionturn server (TURN) --UDP--> iperf3 -s
//   onion  iperf3 -c --UDP--> forward --Tor stream--> onion service --> onionturn udp-gateway --UDP--> iperf3 -s
// iperf3's TCP control connection goes straight to the server on the loopback (socat, Debian): the
// forwards carry UDP only. Each forward listens on its own loopback address with the server's port
// number, since iperf3 uses one port for both. Everything is started and stopped here by PID.
//   --seconds N   per run (default 10)    --rates LIST   Mbit/s, comma-separated (default 1,4)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { prepare } from './prepare.mjs';

function parseArgs(argv) {
  const o = { seconds: 10, rates: [1, 4] };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => inline ?? argv[++i];
    if (flag === '--seconds') o.seconds = Number(value());
    else if (flag === '--rates') o.rates = value().split(',').map(Number);
    else if (flag === '--help' || flag === '-h') {
      console.log('usage: npm run bench:udp -- [--seconds N] [--rates 1,4]');
      process.exit(0);
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!(o.seconds > 0 && o.seconds <= 120) || o.rates.some((r) => !(r > 0 && r <= 20)))
    throw new Error('--seconds must be 1-120 and rates 0-20 Mbit/s (bounded loads)');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
await prepare('bench:udp');
const { ProcessGroup, TOOLS, freePort, onionturnBin, requireTool, startTorNetwork, waitFor } = await import('@onionturn/testkit');
const iperf3 = requireTool(TOOLS.iperf3);
const socat = requireTool(TOOLS.socat);
const BIN = onionturnBin();
const group = new ProcessGroup();
const dir = mkdtempSync(join(tmpdir(), 'onionturn-bench-udp-'));
let net;

async function spawnAndWait(name, cmd, args, ready, timeoutMs = 15_000) {
  const p = group.spawn(name, cmd, args);
  await waitFor(
    `${name} ready`,
    () => {
      if (p.child.exitCode !== null) throw new Error(`${name} exited: ${p.output()}`);
      return ready(p.output());
    },
    timeoutMs,
    50,
  );
  return p;
}

function iperfRun(host, port, mbit) {
  return new Promise((resolve) => {
    execFile(
      iperf3,
      ['-c', host, '-p', String(port), '-u', '-b', `${mbit}M`, '-l', '1200', '-t', String(opts.seconds), '-J'],
      { timeout: (opts.seconds + 60) * 1000 },
      (err, stdout) => {
        try {
          const j = JSON.parse(stdout);
          if (j.error) return resolve({ error: j.error });
          const s = j.end.sum;
          resolve({ lossPercent: s.lost_percent, jitterMs: s.jitter_ms, packets: s.packets, lost: s.lost_packets, mbps: s.bits_per_second / 1e6 });
        } catch {
          resolve({ error: err ? err.message : 'no JSON from iperf3' });
        }
      },
    );
  });
}

const stop = async () => {
  await group.stopAll();
  await net?.stop();
  rmSync(dir, { recursive: true, force: true });
};
process.on('SIGINT', () => void stop().then(() => process.exit(130)));

try {
  writeFileSync(join(dir, 'secret'), 'bench-udp-secret\n', { mode: 0o600 });
  const iperfPort = await freePort();
  await spawnAndWait('iperf3 -s', iperf3, ['-s', '-B', '127.0.0.1', '-p', String(iperfPort), '--forceflush'], (o) => o.includes('Server listening'));
  const gatewayPort = await freePort();
  await spawnAndWait(
    'udp-gateway',
    process.execPath,
    [BIN, 'udp-gateway', '--listen', `tcp://127.0.0.1:${gatewayPort}`, '--to', `udp://127.0.0.1:${iperfPort}`],
    (o) => o.includes('udp-gateway listening'),
  );
  console.log('bench:udp: starting the private Tor network...');
  net = await startTorNetwork({ onion: { targetPort: gatewayPort }, timeoutMs: 120_000 });
  const onion = net.onion.hostname;
  const server = await spawnAndWait(
    'onionturn server',
    process.execPath,
    [BIN, 'server', '--listen', 'tcp://127.0.0.1:0', '--secret-file', join(dir, 'secret'), '--allow-loopback-peers'],
    (o) => o.includes('server-started'),
  );
  const serverPort = Number(/tcp:\/\/127\.0\.0\.1:(\d+)/.exec(server.output())[1]);
  const paths = [
    { name: 'exit', host: '127.0.0.2', target: `127.0.0.1:${iperfPort}` },
    { name: 'onion', host: '127.0.0.3', target: `${onion}:${gatewayPort}` },
  ];
  const forwards = paths.flatMap((p) => ['--forward', `udp://${p.host}:${iperfPort}=${p.target}`]);
  await spawnAndWait(
    'onionturn client',
    process.execPath,
    [
      BIN,
      'client',
      '--listen',
      '127.0.0.1:0',
      '--server',
      `tcp://127.0.0.1:${serverPort}`,
      '--allow-plaintext-upstream',
      '--socks',
      `127.0.0.1:${net.socksPort}`,
      '--upstream-secret-file',
      join(dir, 'secret'),
      '--local-password',
      'bench',
      ...forwards,
    ],
    (o) => o.includes('"message":"listening"'),
  );
  for (const p of paths) {
    // iperf3's control connection, straight to the server (only its UDP goes through the forward).
    group.spawn(`socat ${p.name}`, socat, [`TCP-LISTEN:${iperfPort},bind=${p.host},fork,reuseaddr`, `TCP:127.0.0.1:${iperfPort}`]);
  }
  await new Promise((r) => setTimeout(r, 500));
  const rows = [];
  for (const mbit of opts.rates) {
    const row = { mbit };
    for (const p of paths) {
      let r = await iperfRun(p.host, iperfPort, mbit);
      // iperf3 sometimes fails its UDP start handshake while a new flow's Tor stream opens: once more.
      if (r.error) r = { ...(await iperfRun(p.host, iperfPort, mbit)), retried: r.error };
      row[p.name] = r;
    }
    rows.push(row);
  }
  const cell = (r) => (r.error ? `error: ${r.error}` : `${r.lossPercent.toFixed(2)}% lost, ${r.jitterMs.toFixed(2)} ms jitter${r.retried ? ' (2nd try)' : ''}`);
  console.log(`\niperf3 -u -l 1200, ${opts.seconds} s per run, private Tor network on loopback (unshaped)`);
  console.log(`${'rate'.padEnd(11)}${'exit path (TURN at the exit-side server)'.padEnd(44)}onion path (datagram onion service)`);
  for (const r of rows) console.log(`${`${r.mbit} Mbit/s`.padEnd(11)}${cell(r.exit).padEnd(44)}${cell(r.onion)}`);
  console.log(JSON.stringify({ seconds: opts.seconds, rows }));
} finally {
  await stop();
}
