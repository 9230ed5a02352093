// The congested relay's namespaces on a real kernel: a lab namespace like bench:call's, and in it
// BottleneckNetwork with a TCP server in the relay's namespace. What the relay receives and what
// it sends are each held to the rate (within 20%, read from the router's queues), a ping behind a
// bulk transfer waits no longer than the queue, and the lab's own loopback is not limited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labProfile, median, requireTool, TOOLS } from '../src/index.js';
import { runInTestLab } from './lab-namespaces.js';

// Runs inside the lab namespace: argv = [lab module URL, profile name].
const CHILD = `
import net from 'node:net';
import { spawn } from 'node:child_process';
const lab = await import(process.argv[1]);
const profile = lab.labProfile(process.argv[2]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const P = 5001;
// In the relay's namespace: 'P' echoes, 'S' is a sink, 'G' gets a bulk sent back.
const SERVER = \`
import net from 'node:net';
const block = Buffer.alloc(16384, 0x42);
net.createServer((s) => {
  s.setNoDelay(true);
  s.on('error', () => {});
  let mode;
  s.on('data', (d) => {
    if (!mode) {
      mode = String.fromCharCode(d[0]);
      if (mode === 'G') { const pump = () => { while (s.write(block)); }; s.on('drain', pump); pump(); }
    }
    if (mode === 'P') s.write(d);
  });
}).listen(\${P}, '\${lab.BOTTLENECK_RELAY_ADDRESS}', () => console.log('listening'));
\`;
const bn = lab.BottleneckNetwork.create(profile.bottleneck);
let server;
try {
  const [bin, argv] = bn.wrapRelay(process.execPath, ['--input-type=module', '-e', SERVER]);
  server = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => { server.stdout.once('data', resolve); server.once('exit', () => reject(new Error('server exited'))); });
  const open = async (mode) => {
    const s = net.connect({ port: P, host: lab.BOTTLENECK_RELAY_ADDRESS });
    s.setNoDelay(true);
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    s.write(mode);
    return s;
  };
  const rate = async (dir, ms) => {
    const c0 = bn.counters()[dir], t = performance.now();
    await sleep(ms);
    return ((bn.counters()[dir].sentBytes - c0.sentBytes) * 8) / (performance.now() - t);
  };
  // To the relay: a bulk upload, and pings behind it.
  const up = await open('S');
  const block = Buffer.alloc(16384, 0x41);
  let stop = false;
  const pump = () => { while (!stop && up.write(block)); };
  up.on('drain', pump);
  pump();
  await sleep(1000);
  const ping = await open('P');
  const pingMs = [];
  const inRate = rate('in', 3000);
  for (const end = performance.now() + 3000; performance.now() < end; ) {
    const t = performance.now();
    ping.write('P');
    await new Promise((r) => ping.once('data', r));
    pingMs.push(performance.now() - t);
    await sleep(100);
  }
  const inKbps = await inRate;
  stop = true;
  up.destroy();
  ping.destroy();
  // From the relay: a bulk download.
  const down = await open('G');
  down.on('data', () => {});
  await sleep(1000);
  const outKbps = await rate('out', 3000);
  down.destroy();
  // The lab's own loopback.
  let got = 0;
  const sink = net.createServer((s) => s.on('data', (d) => (got += d.length))).listen(P + 1, '127.0.0.1');
  await new Promise((r) => sink.once('listening', r));
  const local = net.connect({ port: P + 1, host: '127.0.0.1' });
  let more = true;
  const lpump = () => { while (more && local.write(block)); };
  local.on('drain', lpump);
  local.once('connect', lpump);
  await sleep(1000);
  more = false;
  const localKbps = (got * 8) / 1000;
  local.destroy();
  sink.close();
  console.log(JSON.stringify({ inKbps, outKbps, pingMs, localKbps }));
} finally {
  server?.kill();
  await sleep(200);
  bn.delete();
}
process.exit(0);
`;

test('relay bottleneck: rate per direction through the router, the queue a packet waits, the lab loopback unlimited', async (t) => {
  requireTool(TOOLS.tc);
  requireTool(TOOLS.ip);
  const profile = labProfile('tor-congested');
  const b = profile.bottleneck!;
  const m = await runInTestLab<{ inKbps: number; outKbps: number; pingMs: number[]; localKbps: number }>(profile, CHILD, 40_000);
  const worst = Math.max(...m.pingMs);
  t.diagnostic(
    `to the relay ${m.inKbps.toFixed(0)} kbit/s, from it ${m.outKbps.toFixed(0)} kbit/s, lab loopback ${m.localKbps.toFixed(0)} kbit/s; a ping behind the upload ${median(m.pingMs).toFixed(0)} ms (median of ${m.pingMs.length}, worst ${worst.toFixed(0)})`,
  );
  assert.ok(Math.abs(m.inKbps - b.rateKbps) <= b.rateKbps * 0.2, `to the relay ${m.inKbps} kbit/s, expected ${b.rateKbps} +- 20%`);
  assert.ok(Math.abs(m.outKbps - b.rateKbps) <= b.rateKbps * 0.2, `from the relay ${m.outKbps} kbit/s, expected ${b.rateKbps} +- 20%`);
  // A packet waits at most the queue and the one being sent.
  const packetMs = (1514 * 8) / b.rateKbps;
  assert.ok(worst <= (b.queueMs + packetMs) * 1.2, `a ping waited up to ${worst.toFixed(0)} ms, more than the ${b.queueMs} ms queue`);
  assert.ok(median(m.pingMs) >= b.queueMs / 4, `a ping waited ${median(m.pingMs).toFixed(0)} ms behind the upload: the queue was hardly used`);
  assert.ok(m.localKbps > 20 * b.rateKbps, `the lab's loopback is not limited (${m.localKbps} kbit/s)`);
});
