// Real tor processes on loopback: the private network carries streams to an exit and to an
// onion service, the control port shows them, and stop() (or a failed start) leaves nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { SocksClient } from 'socks';
import { TorNetworkStartError, alive, sleep, startEchoServer, startTorNetwork, type TorNetwork } from '../src/index.js';

async function socksStream(net: TorNetwork, host: string, port: number, userId?: string): Promise<Socket> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: net.socksHost, port: net.socksPort, type: 5, ...(userId ? { userId, password: 'x' } : {}) },
    command: 'connect',
    destination: { host, port },
    timeout: 30_000,
  });
  return socket;
}

async function roundTrip(socket: Socket, text: string): Promise<string> {
  socket.write(text);
  let got = '';
  while (got.length < text.length) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    got += chunk.toString('utf8');
  }
  return got;
}

async function assertAllGone(pids: readonly number[], dataDir: string): Promise<void> {
  assert.ok(pids.length > 0);
  // stop() waits for exit already; allow the kernel a moment to reap before declaring a leak.
  for (let i = 0; i < 20 && pids.some(alive); i++) await sleep(50);
  assert.deepEqual(pids.filter(alive), [], 'tor processes still alive after stop');
  assert.equal(existsSync(dataDir), false, 'temp dir left behind');
}

test('exit network: SOCKS stream echoes, hostnames resolve, control port shows streams and circuits, stop leaves nothing', async (t) => {
  const echo = await startEchoServer();
  t.after(() => echo.close());
  const net = await startTorNetwork();
  t.after(() => net.stop());
  t.diagnostic(`timings ${JSON.stringify(net.timings)}`);
  t.diagnostic(`rss KiB ${JSON.stringify(net.rssKiB())}`);
  assert.equal(net.pids.length, 4);
  assert.ok(net.pids.every(alive));

  const a = await socksStream(net, '127.0.0.1', echo.port, 'flow-a');
  t.after(() => a.destroy());
  assert.equal(await roundTrip(a, 'hello through tor'), 'hello through tor');
  // Hostnames go to the exit unresolved; the exits' DNS responder maps them to 127.0.0.1.
  const b = await socksStream(net, 'peer.example.test', echo.port, 'flow-b');
  t.after(() => b.destroy());
  assert.equal(await roundTrip(b, 'by name'), 'by name');

  const control = await net.control();
  t.after(() => control.close());
  const streams = await control.streams();
  const streamA = streams.find((s) => s.target === `127.0.0.1:${echo.port}` && s.status === 'SUCCEEDED');
  assert.ok(streamA, `stream to the echo server not in stream-status: ${JSON.stringify(streams)}`);
  const streamB = streams.find((s) => s.target.startsWith('peer.example.test') || (s !== streamA && s.target.endsWith(`:${echo.port}`)));
  assert.ok(streamB, `hostname stream not in stream-status: ${JSON.stringify(streams)}`);
  const circuits = await control.circuits();
  const circA = circuits.find((c) => c.id === streamA.circuitId);
  assert.ok(circA, `circuit ${streamA.circuitId} not in circuit-status`);
  assert.equal(circA.status, 'BUILT');
  assert.equal(circA.path.length, 3);
  assert.equal(circA.socksUsername, 'flow-a');
  // IsolateSOCKSAuth: a different SOCKS username rides a different circuit.
  assert.notEqual(streamB.circuitId, streamA.circuitId);
  t.diagnostic(`stream ${streamA.id} on circuit ${circA.id}: ${circA.path.join(' -> ')} (${circA.purpose ?? '?'})`);

  control.close();
  a.destroy();
  b.destroy();
  await net.stop();
  await assertAllGone(net.pids, net.dataDir);
});

test('onion network: an echo server behind the .onion address is reachable through SOCKS', async (t) => {
  const echo = await startEchoServer();
  t.after(() => echo.close());
  const net = await startTorNetwork({ onion: { targetPort: echo.port } });
  t.after(() => net.stop());
  t.diagnostic(`timings ${JSON.stringify(net.timings)}`);
  t.diagnostic(`rss KiB ${JSON.stringify(net.rssKiB())}`);
  assert.equal(net.pids.length, 6);
  assert.ok(net.onion);
  assert.match(net.onion.hostname, /^[a-z2-7]{56}\.onion$/);
  assert.equal(net.onion.port, echo.port);

  const s = await socksStream(net, net.onion.hostname, net.onion.port, 'onion-flow');
  t.after(() => s.destroy());
  assert.equal(await roundTrip(s, 'hello onion'), 'hello onion');
  const control = await net.control();
  t.after(() => control.close());
  const stream = (await control.streams()).find((x) => x.target.startsWith(net.onion!.hostname.replace(/\.onion$/, '')));
  assert.ok(stream, 'onion stream not in stream-status');

  control.close();
  s.destroy();
  await net.stop();
  await assertAllGone(net.pids, net.dataDir);
});

test('a start that cannot finish stops everything it started and says why', async () => {
  // 3 s is far too short for a first consensus: the start must time out and clean up.
  const err = await startTorNetwork({ timeoutMs: 3000 }).then(
    async (net) => {
      await net.stop();
      assert.fail('start should have timed out');
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof TorNetworkStartError, String(err));
  assert.match(err.message, /timed out waiting for every authority holding a consensus/);
  assert.match(err.message, /tor logs \(tail\):[\s\S]*auth0/);
  await assertAllGone(err.pids, err.dataDir);
});
