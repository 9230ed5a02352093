// tor-congested's whole Tor network on a real kernel, in a lab namespace like bench:call's: every
// circuit of the client crosses the congested relay in the middle (auth1, auth0, auth2), the
// second client's (the other user's) go around it, the bulk download's circuits cross it between
// relays of their own (so it shares the relay's router links but none of tor's connections with
// the call: sharing them stalled every circuit behind the bulk's losses), and the bulk fills the
// router in both directions while a bare echo beside it waits about the circuit's round trip, not
// seconds (the router queues the bulk's relays apart).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labProfile, requireTool, TOOLS } from '../src/index.js';
import { runInTestLab } from './lab-namespaces.js';

// Runs inside the lab namespace: argv = [lab module URL, profile name]. Prints one JSON line.
const CHILD = `
const lab = await import(process.argv[1]);
const profile = lab.labProfile(process.argv[2]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const net = await lab.startTorNetwork({ shape: profile.link, bulkDownload: true, torrcExtra: profile.torrc, bottleneck: profile.bottleneck, secondClient: profile.secondClient });
try {
  const paths = async (name) => {
    const node = net.nodes.find((n) => n.name === name);
    const c = await lab.TorControl.connect(node.controlPort);
    try {
      return (await c.circuits())
        .filter((x) => x.status === 'BUILT' && x.path.length === 3 && !/IS_INTERNAL|ONEHOP/.test(x.fields.BUILD_FLAGS ?? ''))
        .map((x) => x.path.map((h) => h.split('~')[1]));
    } finally {
      c.close();
    }
  };
  // Once the bulk fills the router: the echo, and the router's rates meanwhile.
  await sleep(2000);
  const c0 = net.bottleneck.counters();
  const t0 = performance.now();
  const echoMs = await net.measureCircuitRtt(9);
  await sleep(Math.max(0, 3000 - (performance.now() - t0)));
  const c1 = net.bottleneck.counters();
  const s = (performance.now() - t0) / 1000;
  const kbps = (d) => ((c1[d].sentBytes - c0[d].sentBytes) * 8) / s / 1000;
  console.log(JSON.stringify({ client: await paths('client'), second: await paths('client-b'), bulk: await paths('bulk'), inKbps: kbps('in'), outKbps: kbps('out'), bulkBytes: net.bulk.received(), echoMs }));
} finally {
  await net.stop();
}
process.exit(0);
`;

test('congested network: the call crosses the congested relay in the middle, the bulk crosses it between relays of its own and fills its router', async (t) => {
  requireTool(TOOLS.tor);
  requireTool(TOOLS.tc);
  requireTool(TOOLS.ip);
  const profile = labProfile('tor-congested');
  const b = profile.bottleneck!;
  assert.equal(profile.secondClient, true);
  const m = await runInTestLab<{
    client: string[][];
    second: string[][];
    bulk: string[][];
    inKbps: number;
    outKbps: number;
    bulkBytes: number;
    echoMs: number;
  }>(profile, CHILD, 240_000);
  t.diagnostic(
    `client circuits ${JSON.stringify(m.client)}, second client ${JSON.stringify(m.second)}, bulk ${JSON.stringify(m.bulk)}; router to the relay ${m.inKbps.toFixed(0)} kbit/s, from it ${m.outKbps.toFixed(0)}; echo beside the bulk ${m.echoMs.toFixed(0)} ms`,
  );
  assert.ok(m.client.length > 0, 'the client has built circuits');
  for (const p of m.client) assert.deepEqual(p, ['auth1', 'auth0', 'auth2'], 'every client circuit: auth1, the congested auth0, auth2');
  assert.ok(m.second.length > 0, 'the second client has built circuits');
  for (const p of m.second) assert.ok(!p.includes('auth0'), `the second client's circuits go around the congested relay: ${p.join(', ')}`);
  assert.ok(m.bulk.length > 0, 'the bulk client has built circuits');
  for (const p of m.bulk) {
    assert.equal(p[1], 'auth0', 'the bulk crosses the congested relay');
    assert.ok(!p.includes('auth1') && !p.includes('auth2'), `the bulk shares no relay but auth0 with the client: ${p.join(', ')}`);
  }
  assert.ok(m.bulkBytes > 0, 'the bulk download flows');
  // The bulk (with tor's own traffic) keeps both of the router's directions busy.
  for (const [dir, kbps] of [
    ['to', m.inKbps],
    ['from', m.outKbps],
  ] as const) {
    assert.ok(kbps >= b.rateKbps * 0.7, `${dir} the relay: ${kbps.toFixed(0)} kbit/s, expected near ${b.rateKbps}`);
  }
  // Beside it, a bare echo on the client's circuit does not wait in the bulk's queue at each of
  // its four crossings of the router's links (measured 79-163 ms; 337-441 ms with one queue for both, kept full).
  assert.ok(m.echoMs < 1.25 * b.queueMs, `an echo beside the bulk took ${m.echoMs.toFixed(0)} ms: it waited in the bulk's queue`);
});
