// A private Tor network whose relay links are shaped and relays rate-limited (tor-typical): it bootstraps, carries a
// stream, the circuit round trip is what the profile promises, and stop() leaves nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { alive, labProfile, sleep, socks5Connect, startTorNetwork } from '../src/index.js';

test('shaped network (tor-typical): bootstraps, carries a stream, circuit RTT ~250 ms', async (t) => {
  const profile = labProfile('tor-typical');
  const net = await startTorNetwork({ shape: profile.link!, relayBandwidthRate: Math.round((profile.relayRateKbps! * 1000) / 8), timeoutMs: 90_000 });
  t.after(() => net.stop());
  t.diagnostic(`timings ${JSON.stringify(net.timings)}`);
  assert.equal(net.shapers.length, 3);
  const rtt = await net.measureCircuitRtt(7);
  t.diagnostic(`circuit RTT median ${rtt.toFixed(0)} ms (profile target ${profile.targetCircuitRttMs} ms)`);
  assert.ok(Math.abs(rtt - profile.targetCircuitRttMs) <= profile.targetCircuitRttMs * 0.2, `circuit RTT ${rtt} ms`);

  // A stream carries 256 KiB back and forth intact.
  const s = await socks5Connect({ proxyPort: net.socksPort, host: '127.0.0.1', port: net.echoPort, username: 'bulk', password: 'x' });
  t.after(() => s.destroy());
  const payload = Buffer.alloc(256 * 1024, 7);
  let got = 0;
  const done = new Promise<void>((resolve) => s.on('data', (d: Buffer) => ((got += d.length) >= payload.length ? resolve() : undefined)));
  s.write(payload);
  await done;
  assert.equal(got, payload.length);
  assert.ok(net.shapers.reduce((sum, p) => sum + p.delivered.up + p.delivered.down, 0) > payload.length, 'the bytes crossed the shapers');
  s.destroy();

  await net.stop();
  for (let i = 0; i < 20 && net.pids.some(alive); i++) await sleep(50);
  assert.deepEqual(net.pids.filter(alive), []);
  assert.equal(existsSync(net.dataDir), false);
});
