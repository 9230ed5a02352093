// `onionturn client` with a tor of its own: the real CLI starts tor, pointed by --tor-config at
// the private Tor network on loopback, and carries coturn's uclient through it to coturn, when
// asked (--tor) and by default when no SOCKS port answers. After SIGTERM the tor child and its
// temporary data directory are gone; Ctrl-C during bootstrap stops it promptly too. Without tor:
// one clear line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ProcessGroup,
  alive,
  freePort,
  runUclient,
  startCoturn,
  startMicrosocks,
  startTorNetwork,
  startTurnutilsPeer,
  waitFor,
  type Coturn,
  type Started,
  type TorNetwork,
  shimArgs,
} from '@onionturn/testkit';
import { checkTorSocks } from '@onionturn/client';
import { runCli, spawnClient } from './run-cli.js';
import { managedTorDataDir, testNetworkConfig, unreachableNetworkConfig } from './testnet-torrc.js';

const SECRET = 'client-tor-secret';

interface RunningClient {
  readonly process: Started;
  stdout(): string;
  stderr(): string;
  /** The JSON log lines so far. */
  log(): Record<string, unknown>[];
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

  function startClient(args: readonly string[], env: Record<string, string> = {}): RunningClient {
    const status = args.includes('--status') ? [] : ['--no-status'];
    const cli = spawnClient(
      group,
      [...status, '--listen', '127.0.0.1:0', '--server', `tcp://127.0.0.1:${coturn.port}`, '--allow-plaintext-upstream', ...args],
      env,
    );
    let stdout = '';
    let stderr = '';
    cli.child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    cli.child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    return {
      process: cli,
      stdout: () => stdout,
      stderr: () => stderr,
      log: () =>
        stderr
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>),
    };
  }

  /** The managed tor's PID once the client logged it; adopted so the group stops it if the test fails. */
  async function torPidOf(client: RunningClient): Promise<number> {
    const pid = await waitFor(
      '"tor starting" in the log',
      () => {
        if (client.process.child.exitCode !== null) throw new Error(`client exited: ${client.stderr()}`);
        return Number(client.log().find((l) => l['message'] === 'tor starting')?.['pid']);
      },
      15_000,
      50,
    );
    group.adopt('managed tor', pid);
    return pid;
  }

  async function iceServersPort(client: RunningClient): Promise<number> {
    return Number(
      await waitFor(
        'iceServers after tor bootstrapped',
        () => {
          if (client.process.child.exitCode !== null) throw new Error(`client exited: ${client.stderr()}`);
          return /"turn:127\.0\.0\.1:(\d+)\?transport=udp"/.exec(client.stdout())?.[1];
        },
        120_000,
        200,
      ),
    );
  }

  async function relaysUclient(client: RunningClient, port: number): Promise<void> {
    const r = await runUclient(group, {
      server: { host: '127.0.0.1', port },
      peer: { host: '127.0.0.1', port: peerPort },
      secret: SECRET,
      tcp: false,
      noRtcp: true,
      messages: 20,
      clients: 1,
      intervalMs: 20,
      timeoutMs: 60_000,
    });
    assert.equal(r.sent, 20, r.output.slice(-1000) + '\n--- client:\n' + client.stderr().slice(-3000));
    assert.equal(r.received, 20, r.output.slice(-800));
  }

  test('--tor --tor-config: bootstraps into the private network (the status page shows it), relays uclient to coturn, tor is gone after SIGTERM', async () => {
    const statusPort = await freePort();
    const client = startClient(['--tor', '--tor-config', join(dir, 'testnet.torrc'), '--status', `127.0.0.1:${statusPort}`]);
    // The status page answers while our own tor bootstraps, before the shim runs.
    type Snapshot = { tor: { managed: boolean; bootstrapPercent?: number; up: boolean }; shim?: unknown };
    const seen: Snapshot[] = [];
    let polling = true;
    const poller = (async (): Promise<void> => {
      while (polling) {
        try {
          const r = await fetch(`http://127.0.0.1:${statusPort}/api/status`);
          seen.push((await r.json()) as Snapshot);
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const port = await iceServersPort(client);
    await waitFor('the status page to show the shim', () => seen.at(-1)?.shim !== undefined, 5000, 50);
    polling = false;
    await poller;
    const during = seen.filter((s) => s.shim === undefined && s.tor.managed);
    assert.ok(during.length > 0, 'the page answered during bootstrap');
    assert.ok(
      during.some((s) => (s.tor.bootstrapPercent ?? 0) < 100),
      `bootstrap progress: ${during.map((s) => s.tor.bootstrapPercent).join(', ')}`,
    );
    const last = seen.at(-1) as Snapshot;
    assert.equal(last.tor.bootstrapPercent, 100);
    assert.equal(last.tor.up, true);
    const torPid = await torPidOf(client);
    assert.equal(alive(torPid), true);
    // Progress is shown, and the shim uses the port tor picked.
    assert.match(client.stderr(), /tor bootstrap \d+%: /);
    assert.match(client.stderr(), /tor bootstrap 100%: Done/);
    const ready = client.log().find((l) => l['message'] === 'tor ready');
    assert.match(String(ready?.['socks']), /^127\.0\.0\.1:\d+$/);
    assert.equal(client.log().find((l) => l['message'] === 'listening')?.['socks'], ready?.['socks']);
    await relaysUclient(client, port);

    client.process.child.kill('SIGTERM');
    await waitFor('client exit', () => client.process.child.exitCode !== null, 10_000);
    assert.equal(client.process.child.exitCode, 0, client.stderr().slice(-2000));
    assert.equal(alive(torPid), false, 'the tor child is gone');
    assert.match(client.stderr(), /"message":"tor stopped"/);
  });

  test('its own tor killed under the shim: started again on the same SOCKS port and data directory, the restart logged once and counted, TURN relays again', async () => {
    const statusPort = await freePort();
    const client = startClient(['--tor', '--tor-config', join(dir, 'testnet.torrc'), '--status', `127.0.0.1:${statusPort}`]);
    const torPid = await torPidOf(client);
    const dataDir = managedTorDataDir(torPid);
    const port = await iceServersPort(client);
    await relaysUclient(client, port);
    const socks = client.log().find((l) => l['message'] === 'tor ready')?.['socks'];

    // Only the tor this test's client started, by its PID.
    process.kill(torPid, 'SIGKILL');
    await waitFor('the old tor gone', () => !alive(torPid), 5000, 20);
    const restarted = await waitFor(
      '"tor restarted" in the log',
      () => {
        if (client.process.child.exitCode !== null) throw new Error(`client exited: ${client.stderr()}`);
        return client.log().find((l) => l['message'] === 'tor restarted');
      },
      15_000,
      50,
    );
    const newPid = Number(restarted['pid']);
    group.adopt('managed tor (restarted)', newPid);
    assert.notEqual(newPid, torPid);
    assert.equal(alive(newPid), true);
    assert.equal(managedTorDataDir(newPid), dataDir, 'the same data directory');
    await waitFor('"tor ready again"', () => client.log().some((l) => l['message'] === 'tor ready again'), 60_000, 100);
    await relaysUclient(client, port);

    const messages = client.log().map((l) => String(l['message']));
    const exits = messages.filter((m) => m.startsWith('tor exited unexpectedly'));
    assert.deepEqual(exits, ['tor exited unexpectedly (SIGKILL); starting it again in 1 s on the same SOCKS port'], messages.join('\n'));
    assert.equal(messages.filter((m) => m === 'tor restarted').length, 1);
    // The restarted tor listens where the shim dials: the first tor's port, written into its torrc.
    const torrc = readFileSync(join(dataDir, 'onionturn-torrc'), 'utf8');
    assert.match(torrc, new RegExp(`^SocksPort ${String(socks).replace(/\./g, '\\.')}$`, 'm'));
    const status = (await (await fetch(`http://127.0.0.1:${statusPort}/api/status`)).json()) as { tor: { restarts: number; socks: string } };
    assert.equal(status.tor.restarts, 1);
    assert.equal(status.tor.socks, socks);
    const metrics = await (await fetch(`http://127.0.0.1:${statusPort}/metrics`)).text();
    assert.match(metrics, /^onionturn_client_tor_restarts_total 1$/m);

    client.process.child.kill('SIGTERM');
    await waitFor('client exit', () => client.process.child.exitCode !== null, 10_000);
    assert.equal(client.process.child.exitCode, 0, client.stderr().slice(-2000));
    assert.equal(alive(newPid), false, 'the restarted tor is gone');
  });

  test("the SOCKS check: a real tor's SocksPort is Tor; microsocks is not, and the shim refuses it without --allow-non-tor-socks", async () => {
    assert.deepEqual(await checkTorSocks({ host: '127.0.0.1', port: net!.socksPort }), { kind: 'tor' });
    const micro = await startMicrosocks(group);
    const v = await checkTorSocks({ host: '127.0.0.1', port: micro.port });
    assert.equal(v.kind, 'not-tor');
    const r = await runCli(['client', ...shimArgs({ serverPort: coturn.port, socks: micro.port })]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^onionturn: the SOCKS proxy at 127\.0\.0\.1:\d+ is not Tor \(it refuses username\/password authentication, which Tor always accepts\): traffic through it would leave without Tor; .*--allow-non-tor-socks for tests\)$/m,
    );
  });

  test('no --socks, no --tor, and no SOCKS port answers: says it starts its own tor, shows bootstrap, relays; SIGTERM removes tor and its data directory', async () => {
    // The default candidates (9050, 9150) replaced by free ports nobody listens on, so the test
    // holds whether or not this machine runs a tor.
    const candidates = [await freePort(), await freePort()].map((p) => `127.0.0.1:${p}`);
    const temp = join(dir, 'tmp-default');
    mkdirSync(temp);
    const client = startClient(['--tor-config', join(dir, 'testnet.torrc')], { ONIONTURN_DEFAULT_SOCKS: candidates.join(','), TMPDIR: temp });
    const torPid = await torPidOf(client);
    const dataDir = managedTorDataDir(torPid);
    assert.equal(dataDir.startsWith(`${temp}/onionturn-tor-`), true, dataDir);
    const port = await iceServersPort(client);
    const messages = client.log().map((l) => String(l['message']));
    assert.ok(messages.includes(`no SOCKS port answers at ${candidates[0]} or ${candidates[1]}: starting a tor of our own`), messages.join('\n'));
    assert.ok(messages.indexOf('tor starting') > messages.findIndex((m) => m.startsWith('no SOCKS port answers')));
    // Bootstrap progress, step by step, up to 100%.
    const progress = messages.filter((m) => /^tor bootstrap \d+%: /.test(m));
    assert.ok(progress.length >= 3, progress.join('\n'));
    assert.match(progress[progress.length - 1] as string, /^tor bootstrap 100%: Done$/);
    assert.equal(client.log().find((l) => l['message'] === 'listening')?.['socks'], client.log().find((l) => l['message'] === 'tor ready')?.['socks']);
    await relaysUclient(client, port);
    assert.equal(existsSync(dataDir), true);

    client.process.child.kill('SIGTERM');
    await waitFor('client exit', () => client.process.child.exitCode !== null, 10_000);
    assert.equal(client.process.child.exitCode, 0, client.stderr().slice(-2000));
    assert.equal(alive(torPid), false, 'the tor child is gone');
    assert.equal(existsSync(dataDir), false, 'its temporary data directory is removed');
    assert.deepEqual(readdirSync(temp), []);
  });

  // SIGINT is Ctrl-C; SIGHUP is the terminal closing under it (Node's default would kill the
  // process without cleanup, leaving the data directory behind).
  for (const sig of ['SIGINT', 'SIGHUP'] as const) {
    test(`${sig} while its own tor is still bootstrapping: exits within 5 s with a clear line, tor stopped, data directory removed`, async () => {
      // The only authority listens nowhere: tor starts bootstrapping and can never finish.
      writeFileSync(join(dir, `unreachable-${sig}.torrc`), unreachableNetworkConfig(await freePort(), await freePort()));
      const temp = join(dir, `tmp-${sig.toLowerCase()}`);
      mkdirSync(temp);
      const client = startClient(['--tor', '--tor-config', join(dir, `unreachable-${sig}.torrc`)], { TMPDIR: temp });
      const torPid = await torPidOf(client);
      const dataDir = managedTorDataDir(torPid);
      // Past 0%: tor is out trying to reach the network.
      await waitFor('bootstrap under way', () => client.log().some((l) => /^tor bootstrap [1-9]\d*%: /.test(String(l['message']))), 15_000, 50);
      assert.equal(alive(torPid), true);
      assert.equal(existsSync(dataDir), true);

      const sent = Date.now();
      client.process.child.kill(sig);
      await waitFor(`client exit after ${sig}`, () => client.process.child.exitCode !== null, 5000, 20);
      const tookMs = Date.now() - sent;
      assert.ok(tookMs < 5000, `exited after ${tookMs} ms`);
      assert.equal(client.process.child.exitCode, 0, client.stderr().slice(-2000));
      const messages = client.log().map((l) => String(l['message']));
      assert.ok(messages.includes(`${sig}: stopping`), messages.join('\n'));
      assert.ok(
        messages.includes(`stopped on ${sig} before tor finished bootstrapping; tor is stopped and its temporary data directory removed`),
        messages.join('\n'),
      );
      assert.ok(messages.includes('tor stopped'));
      assert.equal(client.stdout(), '', 'no iceServers: the shim never ran');
      assert.equal(alive(torPid), false, 'the tor child is gone');
      assert.equal(existsSync(dataDir), false, 'its temporary data directory is removed');
      assert.deepEqual(readdirSync(temp), []);
    });
  }

  test('no tor installed: one line that says how to install it, exit 1', async () => {
    const r = await runCli([
      'client',
      '--tor',
      '--tor-path',
      join(dir, 'no-such-tor'),
      '--listen',
      '127.0.0.1:0',
      '--server',
      `tcp://127.0.0.1:${coturn.port}`,
      '--allow-plaintext-upstream',
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /onionturn: tor is not installed at .*no-such-tor; install it with: apt-get install tor \(or pass --socks HOST:PORT of a running tor\)\n$/,
    );
  });
});
