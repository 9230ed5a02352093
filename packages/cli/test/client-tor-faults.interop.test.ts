// Faults of the Tor path under a running shim (issue 16), with real tor processes and coturn's
// uclient as the app: one Tor stream cut inside tor ends only the flow it carried, and tor
// restarted under the shim (an external tor, as a system tor restarts on upgrade) leaves the
// shim running, with new flows working again once tor is back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ProcessGroup,
  requireTool,
  type RunningServer,
  runUclient,
  sleep,
  type Started,
  startServer,
  startTorNetwork,
  startTurnutilsPeer,
  TOOLS,
  type TorNetwork,
  type TurnutilsPeer,
  waitFor,
  shimArgs,
} from '@onionturn/testkit';
import { shimPort, spawnClient } from './run-cli.js';

const SECRET = 'tor-faults-secret';

describe('Tor path faults under a running shim', () => {
  const group = new ProcessGroup();
  let net: TorNetwork;
  let server: RunningServer;
  let peer: TurnutilsPeer;
  let shim: Started;
  let port: number;

  const dir = mkdtempSync(join(tmpdir(), 'onionturn-tor-faults-'));

  before(async () => {
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
    [net, server, peer] = await Promise.all([
      startTorNetwork({ timeoutMs: 90_000 }),
      startServer(group, ['--secret-file', secretFile, '--allow-loopback-peers']),
      startTurnutilsPeer(group),
    ]);
    shim = spawnClient(group, [
      ...shimArgs({ serverPort: server.tcp, socks: net.socksPort }),
      // The cut below picks one of the streams to the server: a stream held ready carries no call.
      '--no-ready-stream',
    ]);
    port = await shimPort(shim);
  });
  after(async () => {
    await group.stopAll();
    await net?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const uclient = (messages: number, timeoutMs = 60_000) =>
    runUclient(group, { server: { host: '127.0.0.1', port }, peer, secret: SECRET, tcp: false, noRtcp: true, messages, intervalMs: 20, timeoutMs });

  test('one Tor stream cut inside tor: only the flow it carried ends; the other call relays every datagram', async () => {
    const control = await net.control();
    try {
      const toServer = async () => (await control.streams()).filter((s) => s.target.endsWith(`:${server.tcp}`) && s.status === 'SUCCEEDED');
      const before = (await toServer()).length;
      const [a, b] = [uclient(300), uclient(300)];
      // Each uclient opens its allocations through the shim, each flow on its own stream.
      const streams = await waitFor(
        'both calls to have their Tor streams',
        async () => {
          const s = await toServer();
          return s.length >= before + 4 ? s : undefined;
        },
        30_000,
        100,
      );
      await sleep(1500);
      const victim = streams[streams.length - 1];
      assert.ok(victim);
      const reply = await control.command(`CLOSESTREAM ${victim.id} 1`);
      assert.equal(reply.code, 250);
      const [ra, rb] = await Promise.all([a, b]);
      const runs = [ra, rb].map((r) => ({ sent: r.sent, received: r.received }));
      const whole = [ra, rb].filter((r) => r.sent === 300 && r.received === 300);
      assert.equal(whole.length, 1, `exactly one call was cut: ${JSON.stringify(runs)}\n${shim.output().slice(-1500)}`);
      const closedByCut = shim
        .output()
        .split('\n')
        .filter((l) => l.includes('upstream closed the stream') || l.includes('upstream stream failed'));
      assert.ok(closedByCut.length >= 1, `the shim says a flow lost its stream:\n${shim.output().slice(-1500)}`);
      assert.equal(shim.child.exitCode, null, 'the shim runs on');
    } finally {
      control.close();
    }
  });

  test('tor restarted under the shim: flows fail while it is down, the shim runs on, new flows work again once tor is back', async () => {
    const client = net.nodes.find((n) => n.role === 'client');
    assert.ok(client, 'the network has a client tor');
    process.kill(client.pid, 'SIGTERM');
    await waitFor(
      'the client tor to exit',
      () => {
        try {
          process.kill(client.pid, 0);
          return undefined;
        } catch {
          return true;
        }
      },
      15_000,
      50,
    );
    const down = await uclient(5, 15_000);
    assert.notEqual(down.received, 5, 'nothing relays without tor');
    assert.equal(shim.child.exitCode, null, 'the shim runs on without tor');
    // The same torrc and data directory, as a service manager would restart it.
    const started = Date.now();
    const again = group.spawn('client tor (restarted)', requireTool(TOOLS.tor), ['-f', join(client.dataDir, 'torrc'), '--defaults-torrc', '/dev/null']);
    const ok = await waitFor(
      'a call through the restarted tor',
      async () => {
        if (again.child.exitCode !== null) throw new Error(`restarted tor exited: ${again.output().slice(-800)}`);
        const r = await uclient(5, 20_000);
        return r.received === 5 ? r : undefined;
      },
      90_000,
      500,
    );
    const seconds = (Date.now() - started) / 1000;
    assert.equal(ok.sent, 5);
    console.log(`tor restarted: calls work again ${seconds.toFixed(1)} s after tor started`);
    again.child.kill('SIGTERM');
    await once(again.child, 'exit');
  });
});
