// `onionturn client --tor`: the real CLI starts a tor of its own, pointed by --tor-config at the
// private Tor network on loopback, and carries coturn's uclient through it to coturn. After
// SIGTERM the tor child is gone. Without tor: one clear line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ProcessGroup,
  alive,
  buildTorrc,
  runUclient,
  startCoturn,
  startTorNetwork,
  startTurnutilsPeer,
  waitFor,
  type Coturn,
  type TorNetwork,
} from '@onionturn/testkit';
import { BIN, cleanEnv, runCli } from './run-cli.js';

const SECRET = 'client-tor-secret';

/** Lines every tor of a process sets for itself; the managed tor sets its own. */
const PER_PROCESS = /^(#|Nickname |DataDirectory |PidFile |RunAsDaemon |Log |ControlPort |SocksPort |CookieAuthentication |__OwningControllerProcess )/;

/** What a client tor needs to join the test network: testkit's client torrc minus per-process lines. */
function testNetworkConfig(net: TorNetwork): string {
  const full = buildTorrc({ role: 'client', nickname: 'shimtor', dataDir: '/unused', controlPort: 1, socksPort: 1, authorities: net.authorities });
  return full.split('\n').filter((l) => l !== '' && !PER_PROCESS.test(l)).join('\n') + '\n';
}

describe('onionturn client with its own tor', () => {
  const group = new ProcessGroup();
  let net: TorNetwork | undefined;
  let coturn: Coturn;
  let peerPort: number;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'onionturn-client-tor-'));
    net = await startTorNetwork({ timeoutMs: 90_000 });
    coturn = await startCoturn(group, { secrets: [SECRET], verbose: false });
    peerPort = (await startTurnutilsPeer(group)).port;
    writeFileSync(join(dir, 'testnet.torrc'), testNetworkConfig(net));
  });
  after(async () => {
    await group.stopAll();
    await net?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('--tor --tor-config: bootstraps into the private network, relays uclient to coturn, tor is gone after SIGTERM', async () => {
    const cli = group.spawn('onionturn client --tor', process.execPath, [BIN, 'client', '--tor', '--tor-config', join(dir, 'testnet.torrc'), '--listen', '127.0.0.1:0', '--server', `tcp://127.0.0.1:${coturn.port}`], { env: cleanEnv() });
    let stdout = '';
    let stderr = '';
    cli.child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    cli.child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const port = Number(
      await waitFor('iceServers after tor bootstrapped', () => {
        if (cli.child.exitCode !== null) throw new Error(`client exited: ${stderr}`);
        return /"turn:127\.0\.0\.1:(\d+)\?transport=udp"/.exec(stdout)?.[1];
      }, 120_000, 200),
    );
    const logLines = (): Record<string, unknown>[] => stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const torPid = Number(logLines().find((l) => l['message'] === 'tor starting')?.['pid']);
    assert.ok(torPid > 0, stderr);
    assert.equal(alive(torPid), true);
    // Progress is shown, and the shim uses the port tor picked.
    assert.match(stderr, /tor bootstrap \d+%: /);
    assert.match(stderr, /tor bootstrap 100%: Done/);
    const ready = logLines().find((l) => l['message'] === 'tor ready');
    assert.match(String(ready?.['socks']), /^127\.0\.0\.1:\d+$/);
    assert.equal(logLines().find((l) => l['message'] === 'listening')?.['socks'], ready?.['socks']);

    const r = await runUclient(group, { server: { host: '127.0.0.1', port }, peer: { host: '127.0.0.1', port: peerPort }, secret: SECRET, tcp: false, noRtcp: true, messages: 20, clients: 1, intervalMs: 20, timeoutMs: 60_000 });
    assert.equal(r.sent, 20, r.output.slice(-1000) + '\n--- client:\n' + stderr.slice(-3000));
    assert.equal(r.received, 20, r.output.slice(-800));

    cli.child.kill('SIGTERM');
    await waitFor('client exit', () => cli.child.exitCode !== null, 10_000);
    assert.equal(cli.child.exitCode, 0, stderr.slice(-2000));
    assert.equal(alive(torPid), false, 'the tor child is gone');
    assert.match(stderr, /"message":"tor stopped"/);
  });

  test('no tor installed: one line that says how to install it, exit 1', async () => {
    const r = await runCli(['client', '--tor', '--tor-path', join(dir, 'no-such-tor'), '--listen', '127.0.0.1:0', '--server', `tcp://127.0.0.1:${coturn.port}`]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /onionturn: tor is not installed at .*no-such-tor; install it with: apt-get install tor \(or pass --socks HOST:PORT of a running tor\)\n$/);
  });
});
