// coturn's own client (turnutils_uclient) and echo peer (turnutils_peer) against the real
// `onionturn server`: TURN over TCP and UDP, REST secrets and static users, channels and Send
// indications, 1 and 50 clients; a loopback peer without --allow-loopback-peers gets 403.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessGroup, runUclient, startServer, startTurnutilsPeer, testTempDir } from '@onionturn/testkit';
import { assertEchoed } from './uclient-asserts.js';

const SECRET = 'interop-secret-5e1f0a';

test('turnutils_uclient relays through onionturn server: TCP and UDP, channels and Send, REST and static, 1 and 50 clients', async (t) => {
  const dir = testTempDir(t);
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const [server, peer] = await Promise.all([
    startServer(group, ['--secret-file', secretFile, '--user', 'alice:wonderland', '--allow-loopback-peers', '--max-allocations-per-user', '200']),
    startTurnutilsPeer(group),
  ]);
  const peerAddr = { host: peer.host, port: peer.port };
  const runs: [string, Parameters<typeof runUclient>[1], number][] = [];
  for (const tcp of [true, false]) {
    const port = tcp ? server.tcp : server.udp;
    const s = { host: '127.0.0.1', port };
    const name = tcp ? 'TCP' : 'UDP';
    runs.push([`${name} channels, REST, 1 client`, { server: s, secret: SECRET, peer: peerAddr, tcp, clients: 1, messages: 20, extraArgs: ['-c'] }, 20]);
    runs.push([
      `${name} Send indications, REST, 1 client`,
      { server: s, secret: SECRET, peer: peerAddr, tcp, clients: 1, messages: 20, extraArgs: ['-c', '-s'] },
      20,
    ]);
    runs.push([
      `${name} channels, static user, 1 client`,
      { server: s, username: 'alice', password: 'wonderland', peer: peerAddr, tcp, clients: 1, messages: 10, extraArgs: ['-c'] },
      10,
    ]);
    runs.push([
      `${name} channels, REST, 50 clients`,
      { server: s, secret: SECRET, peer: peerAddr, tcp, clients: 50, messages: 10, length: 200, extraArgs: ['-c'], timeoutMs: 60_000 },
      500,
    ]);
    runs.push([
      `${name} Send indications, REST, 50 clients`,
      { server: s, secret: SECRET, peer: peerAddr, tcp, clients: 50, messages: 10, extraArgs: ['-c', '-s'], timeoutMs: 60_000 },
      500,
    ]);
  }
  for (const [what, options, expected] of runs) {
    await t.test(what, async () => assertEchoed(await runUclient(group, options), what, expected));
  }
  await t.test('RTCP pairs (EVEN-PORT with reservation, no -c) also work', async () => {
    const run = await runUclient(group, { server: { host: '127.0.0.1', port: server.tcp }, secret: SECRET, peer: peerAddr, clients: 2, messages: 10 });
    assertEchoed(run, 'TCP with RTCP', 20);
  });
});

test('without --allow-loopback-peers a loopback peer gets 403 and nothing reaches it', async (t) => {
  const dir = testTempDir(t);
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const [server, peer] = await Promise.all([startServer(group, ['--secret-file', secretFile]), startTurnutilsPeer(group)]);
  for (const tcp of [true, false]) {
    for (const extra of [['-c'], ['-c', '-s']]) {
      const run = await runUclient(group, {
        server: { host: '127.0.0.1', port: tcp ? server.tcp : server.udp },
        secret: SECRET,
        peer: { host: peer.host, port: peer.port },
        tcp,
        messages: 5,
        extraArgs: extra,
      });
      const what = `${tcp ? 'TCP' : 'UDP'} ${extra.join(' ')}`;
      assert.match(run.output, /error 403 \(Forbidden\)/, `${what}: ${run.output.slice(-800)}`);
      assert.ok((run.received ?? 0) === 0, `${what}: ${run.received} messages came back through a denied peer`);
    }
  }
});
