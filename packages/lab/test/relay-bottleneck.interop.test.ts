// The congested relay's bottleneck on a real kernel: tc's htb in a network namespace of the
// test's own, and TCP through it from a node process inside. What the relay receives and what it
// sends are each held to the rate (within 20%), a packet waits behind a bulk transfer but no
// longer than the queue, and traffic that is not the relay's passes unlimited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BOTTLENECK_OUTBOUND_ADDRESS, bottleneckTcCommands, createLabNamespace, labProfile, median, requireTool, TOOLS } from '../src/index.js';

const run = promisify(execFile);

// Inside the namespace: port P stands for the relay's ORPort (connections to it and its answers),
// 127.0.1.1 for the address its own connections leave from, port Q for anyone else.
const CHILD = `
import net from 'node:net';
const [P, Q, OWN] = process.argv.slice(1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let sunk = 0;
const serve = (port) => new Promise((resolve) => {
  const srv = net.createServer((s) => {
    s.setNoDelay(true);
    let mode;
    s.on('data', (d) => {
      mode ??= d[0] === 0x50 ? 'ping' : 'sink';
      if (mode === 'ping') s.write(d); else sunk += d.length;
    });
    s.on('error', () => {});
  });
  srv.listen(Number(port), '127.0.0.1', () => resolve(srv));
});
const servers = [await serve(P), await serve(Q)];
const block = Buffer.alloc(16 * 1024, 0x42);
async function bulk(port, localAddress, ms, during) {
  const s = net.connect({ port: Number(port), host: '127.0.0.1', localAddress });
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  let stop = false;
  const pump = () => { while (!stop && s.write(block)); };
  s.on('drain', pump);
  pump();
  await sleep(1000); // TCP has filled the queue
  const from = sunk, t = performance.now();
  const extra = during ? await during(ms) : await sleep(ms);
  const kbps = ((sunk - from) * 8) / (performance.now() - t);
  stop = true;
  s.destroy();
  await sleep(300);
  return { kbps, extra };
}
async function pings(ms) {
  const s = net.connect({ port: Number(P), host: '127.0.0.1' });
  s.setNoDelay(true);
  await new Promise((r) => s.once('connect', r));
  const rtts = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t = performance.now();
    s.write('P');
    await new Promise((r) => s.once('data', r));
    rtts.push(performance.now() - t);
    await sleep(100);
  }
  s.destroy();
  return rtts;
}
const into = await bulk(P, '127.0.0.1', 3000, pings);
const out = await bulk(Q, OWN, 3000);
const other = await bulk(Q, '127.0.0.1', 1000);
console.log(JSON.stringify({ inKbps: into.kbps, pingMs: into.extra, outKbps: out.kbps, otherKbps: other.kbps }));
for (const s of servers) s.close();
process.exit(0);
`;

test('relay bottleneck: rate per direction, the queue a packet waits, and nothing else limited', async (t) => {
  requireTool(TOOLS.tc);
  // The profile's own bottleneck, in a namespace like the one bench:call runs it in.
  const profile = labProfile('tor-congested');
  const b = profile.bottleneck!;
  const ns = createLabNamespace(profile.namespace!);
  try {
    const [P, Q] = [5001, 5002];
    for (const args of bottleneckTcCommands(b, { publishedOrPort: P, orPort: P, outboundAddress: BOTTLENECK_OUTBOUND_ADDRESS })) ns.run('tc', args);
    const [bin, argv] = ns.wrap(process.execPath, ['--input-type=module', '-e', CHILD, String(P), String(Q), BOTTLENECK_OUTBOUND_ADDRESS]);
    const { stdout } = await run(bin, argv, { timeout: 30_000 });
    const m = JSON.parse(stdout.trim().split('\n').pop()!) as { inKbps: number; pingMs: number[]; outKbps: number; otherKbps: number };
    const pingMs = median(m.pingMs);
    t.diagnostic(
      `to the relay ${m.inKbps.toFixed(0)} kbit/s, from it ${m.outKbps.toFixed(0)} kbit/s, others ${m.otherKbps.toFixed(0)} kbit/s; a ping behind the bulk ${pingMs.toFixed(0)} ms (median of ${m.pingMs.length})`,
    );
    assert.ok(Math.abs(m.inKbps - b.rateKbps) <= b.rateKbps * 0.2, `to the relay ${m.inKbps} kbit/s, expected ${b.rateKbps} +- 20%`);
    assert.ok(Math.abs(m.outKbps - b.rateKbps) <= b.rateKbps * 0.2, `from the relay ${m.outKbps} kbit/s, expected ${b.rateKbps} +- 20%`);
    // The queue is an upper bound: a packet waits at most the queue and the one being sent (TCP
    // with the namespace's small buffers keeps it about half full).
    const packetMs = (1514 * 8) / b.rateKbps;
    const worst = Math.max(...m.pingMs);
    assert.ok(worst <= (b.queueMs + packetMs) * 1.2, `a ping waited up to ${worst.toFixed(0)} ms, more than the ${b.queueMs} ms queue`);
    assert.ok(pingMs >= b.queueMs / 4, `a ping waited ${pingMs.toFixed(0)} ms behind the bulk: the queue was hardly used`);
    assert.ok(m.otherKbps > 20 * b.rateKbps, `traffic not the relay's is not limited (${m.otherKbps} kbit/s)`);
  } finally {
    ns.delete();
  }
});
