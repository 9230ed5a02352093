// The per-destination budget through the real server: coturn's turnutils_uclient (four
// allocations) floods one turnutils_peer; all of them together get --destination-packet-rate, the
// rest is dropped and counted in /metrics. The default budget lets the same run through whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessGroup, freePort, runUclient, startServer, startTurnutilsPeer, testTempDir as tempDir } from '@onionturn/testkit';

const SECRET = 'destination-secret-1';

async function flood(
  t: { after: (fn: () => Promise<void> | void) => void },
  args: readonly string[],
): Promise<{ sent: number; received: number; dropped: number }> {
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const dir = tempDir(t);
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const metrics = await freePort();
  const server = await startServer(group, ['--secret-file', secretFile, '--allow-loopback-peers', '--metrics', `127.0.0.1:${metrics}`, ...args]);
  const peer = await startTurnutilsPeer(group);
  const run = await runUclient(group, {
    server: { host: '127.0.0.1', port: server.tcp },
    secret: SECRET,
    peer: { host: peer.host, port: peer.port },
    clients: 4,
    messages: 100,
    length: 100,
    intervalMs: 0,
    noRtcp: true,
  });
  assert.equal(run.allocationFailed, false, run.output.slice(-1500));
  const body = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
  const dropped = Number(/onionturn_dropped_total\{reason="destination-budget"\} (\d+)/.exec(body)?.[1] ?? '0'); // a label appears at its first count
  return { sent: run.sent ?? 0, received: run.received ?? 0, dropped };
}

test('four allocations to one peer share --destination-packet-rate; the excess is dropped and counted', async (t) => {
  const r = await flood(t, ['--destination-packet-rate', '50']);
  assert.equal(r.sent, 400);
  assert.ok(r.received < 250, `received ${r.received} of 400 with a budget of 50/s`);
  assert.ok(r.dropped >= 400 - r.received - 10 && r.dropped > 100, `dropped ${r.dropped}, received ${r.received}`);
});

test('with the default budget the same flood goes through', async (t) => {
  const r = await flood(t, []);
  assert.equal(r.sent, 400);
  assert.equal(r.dropped, 0);
  assert.ok(r.received >= 390, `received ${r.received} of 400`);
});
