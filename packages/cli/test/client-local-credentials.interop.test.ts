// Local-credential mode of the real `onionturn client`: coturn's uclient authenticates with static
// -u/-w credentials at the shim; the shim signs upstream with REST credentials for a coturn that
// knows only the shared secret, through Debian microsocks. Upstream credentials come from the
// secret file, or from `onionturn credentials serve` fetched through the SOCKS proxy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ProcessGroup,
  countClientConnections,
  runUclient,
  startCoturn,
  startMicrosocks,
  startTurnutilsPeer,
  waitFor,
  type Coturn,
  type Started,
  shimArgs,
} from '@onionturn/testkit';
import { runCli, startServe, spawnClient } from './run-cli.js';
import { allocateWith } from './stun-app.js';

const SECRET = 'local-mode-upstream-secret';

interface RunningClient {
  readonly process: Started;
  readonly port: number;
  readonly ice: { iceServers: { urls: string[]; username: string; credential: string }[] };
  /** The JSON log (stderr). */
  log(): string;
  stop(): Promise<number | null>;
}

describe('onionturn client in local-credential mode', () => {
  const group = new ProcessGroup();
  let coturn: Coturn;
  let peerPort: number;
  let socksPort: number;
  let dir: string;

  async function startClient(args: readonly string[]): Promise<RunningClient> {
    const cli = spawnClient(group, ['--no-status', ...shimArgs({ serverPort: coturn.port, socks: socksPort, notTor: true }), ...args], {
      XDG_CONFIG_HOME: join(dir, 'xdg'),
    });
    let stdout = '';
    let stderr = '';
    cli.child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    cli.child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const port = await waitFor(
      'iceServers on stdout',
      () => {
        if (cli.child.exitCode !== null) throw new Error(`client exited: ${cli.output()}`);
        return /"turn:127\.0\.0\.1:(\d+)\?transport=udp"/.exec(stdout)?.[1];
      },
      10_000,
      50,
    );
    await waitFor('the whole JSON', () => stdout.trimEnd().endsWith('}'), 2000, 20);
    return {
      process: cli,
      port: Number(port),
      ice: JSON.parse(stdout) as RunningClient['ice'],
      log: () => stderr,
      stop: async () => {
        cli.child.kill('SIGTERM');
        await waitFor('client exit', () => cli.child.exitCode !== null || cli.child.signalCode !== null, 5000);
        return cli.child.exitCode;
      },
    };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'onionturn-local-'));
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
    coturn = await startCoturn(group, { secrets: [SECRET], verbose: true });
    peerPort = (await startTurnutilsPeer(group)).port;
    socksPort = (await startMicrosocks(group)).port;
  });
  after(async () => {
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test('--upstream-secret-file: static app credentials, allocations, channels and relay over UDP and TCP; wrong password gets 401', async () => {
    const client = await startClient(['--upstream-secret-file', join(dir, 'secret'), '--local-user', 'alice', '--local-password', 'wonderland']);
    // What the user pastes: the local credentials are in it.
    assert.equal(client.ice.iceServers[0]?.username, 'alice');
    assert.equal(client.ice.iceServers[0]?.credential, 'wonderland');
    const base = {
      server: { host: '127.0.0.1', port: client.port },
      peer: { host: '127.0.0.1', port: peerPort },
      username: 'alice',
      password: 'wonderland',
      noRtcp: true,
      messages: 40,
      clients: 2,
      intervalMs: 10,
    } as const;
    const udp = await runUclient(group, { ...base, tcp: false });
    assert.equal(udp.sent, 80, udp.output.slice(-1500) + '\n--- shim:\n' + client.process.output().slice(-2000));
    assert.equal(udp.received, 80, udp.output.slice(-800));
    assert.equal(udp.lostPackets, 0);
    const tcp = await runUclient(group, { ...base, tcp: true });
    assert.equal(tcp.sent, 80, tcp.output.slice(-1500) + '\n--- shim:\n' + client.process.output().slice(-2000));
    assert.equal(tcp.received, 80, tcp.output.slice(-800));
    // Send indications instead of channels (-s) pass through unchanged too.
    const indications = await runUclient(group, { ...base, tcp: false, messages: 10, extraArgs: ['-s'] });
    assert.equal(indications.received, 20, indications.output.slice(-800));
    // coturn saw REST usernames (<expiry>:<random id>), never the app's static user.
    assert.match(coturn.log(), /user <\d{10}:[A-Za-z0-9_-]{22}>/);
    assert.doesNotMatch(coturn.log(), /user <alice>/);

    const allocationsBefore = coturn.log().match(/ALLOCATE processed, success/g)?.length ?? 0;
    const wrong = await runUclient(group, { ...base, tcp: false, password: 'not-it', messages: 5, clients: 1, timeoutMs: 15_000 });
    assert.equal(wrong.received ?? 0, 0);
    assert.equal(wrong.allocationFailed, true, wrong.output.slice(-800));
    // uclient prints no error code; the shim's log says what happened, and a STUN probe sees the 401.
    assert.match(client.log(), /app authentication failed: wrong local username or password \(401\)/);
    // ...and a wrong password costs no Tor stream: the flow never dialled.
    const failedFlows = [...client.log().matchAll(/"flow":(\d+),"level":"warn","message":"app authentication failed/g)].map((m) => m[1]);
    for (const f of failedFlows) assert.doesNotMatch(client.log(), new RegExp(`"flow":${f},"kind":"udp","level":"info","message":"flow open"`));
    const probe = await allocateWith(client.port, 'alice', 'not-it');
    assert.equal(probe.code, 401);
    assert.equal(probe.realm, 'onionturn.local');
    assert.equal(coturn.log().match(/ALLOCATE processed, success/g)?.length ?? 0, allocationsBefore, 'nothing allocated upstream for a wrong password');
    // SafeLogging: no usernames or app addresses in the shim's log.
    assert.doesNotMatch(client.log(), /"app":"(?!\[scrubbed\])|alice|\d{10}:[A-Za-z0-9_-]{22}/);
    assert.equal(await client.stop(), 0, client.process.output());
    await waitFor('no shim->SOCKS sockets', () => countClientConnections(socksPort) === 0, 5000);
  });

  test('--credentials-url: a fresh credential per flow from `onionturn credentials serve`, fetched through SOCKS; no fixed default password', async () => {
    const served = await startServe(group, ['--secret-file', join(dir, 'secret'), '--ttl', '3600', '--uri', `turn:127.0.0.1:${coturn.port}?transport=tcp`]);
    const client = await startClient(['--credentials-url', `${served.base}/?service=turn`]);
    assert.equal(client.ice.iceServers[0]?.username, 'onionturn');
    // Without --local-password: a random one, kept 0600 under $XDG_CONFIG_HOME, printed in iceServers.
    const file = join(dir, 'xdg', 'onionturn', 'local-password');
    const password = client.ice.iceServers[0]?.credential ?? '';
    assert.match(password, /^[A-Za-z0-9_-]{24}$/);
    assert.equal(readFileSync(file, 'utf8').trim(), password);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    // stderr and stdout are two pipes: the line may be read a moment after the iceServers.
    await waitFor('the local password line', () => /local password generated and saved in .*local-password/.test(client.log()), 5000, 20);
    assert.doesNotMatch(client.log(), new RegExp(password), 'the password is on stdout only');
    // The old fixed default is no way in.
    assert.equal((await allocateWith(client.port, 'onionturn', 'onionturn')).code, 401);
    const before = coturn.log().length;
    const r = await runUclient(group, {
      server: { host: '127.0.0.1', port: client.port },
      peer: { host: '127.0.0.1', port: peerPort },
      username: 'onionturn',
      password,
      tcp: false,
      noRtcp: true,
      messages: 30,
      clients: 2,
      intervalMs: 10,
    });
    assert.equal(r.sent, 60, r.output.slice(-1500) + '\n--- shim:\n' + client.process.output().slice(-2000));
    assert.equal(r.received, 60, r.output.slice(-800));
    // Four app flows (two clients, two allocations each): four distinct upstream usernames.
    const users = new Set(
      [
        ...coturn
          .log()
          .slice(before)
          .matchAll(/user <(\d{10}:[A-Za-z0-9_-]{22})>/g),
      ].map((m) => m[1]),
    );
    assert.equal(users.size, 4, [...users].join(' '));
    assert.equal(await client.stop(), 0, client.process.output());
    // A restart keeps it, so the app's config keeps working.
    const again = await startClient(['--credentials-url', `${served.base}/?service=turn`]);
    assert.equal(again.ice.iceServers[0]?.credential, password);
    await waitFor('the local password line', () => /local password read from .*local-password/.test(again.log()), 5000, 20);
    assert.equal(await again.stop(), 0, again.process.output());
  });

  test('a credential URL that fails closes the flow with a clear line that names no URL (its query may hold an API key)', async () => {
    writeFileSync(join(dir, 'api-key'), 'the-right-key\n', { mode: 0o600 });
    const served = await startServe(group, [
      '--secret-file',
      join(dir, 'secret'),
      '--api-key-file',
      join(dir, 'api-key'),
      '--uri',
      `turn:127.0.0.1:${coturn.port}?transport=tcp`,
    ]);
    const refusedUrl = `${served.base}/?service=turn&key=SECRET-API-KEY-1`;
    const deadUrl = 'http://127.0.0.1:9/none?key=SECRET-API-KEY-2';
    /** One app flow through a client started with `args`; returns the client's log once the flow closed. */
    const failedFlow = async (args: readonly string[]): Promise<string> => {
      const client = await startClient(args);
      const password = client.ice.iceServers[0]?.credential ?? '';
      const r = await runUclient(group, {
        server: { host: '127.0.0.1', port: client.port },
        peer: { host: '127.0.0.1', port: peerPort },
        username: 'onionturn',
        password,
        tcp: false,
        noRtcp: true,
        messages: 2,
        clients: 1,
        timeoutMs: 6000,
      });
      assert.equal(r.received ?? 0, 0);
      await waitFor('the flow-closed line', () => /"message":"flow closed: no upstream credential: /.test(client.log()), 10_000);
      assert.equal(await client.stop(), 0, client.process.output());
      return client.log();
    };
    const socks = `127\\.0\\.0\\.1:${socksPort}`;
    // SafeLogging (the default): the reason, and no part of the URL.
    const refused = await failedFlow(['--credentials-url', refusedUrl]);
    assert.match(refused, /"message":"flow closed: no upstream credential: the credential URL answered HTTP 40[13]"/);
    const dead = await failedFlow(['--credentials-url', deadUrl]);
    assert.match(dead, new RegExp(`"message":"flow closed: no upstream credential: cannot fetch the credential URL through SOCKS ${socks}: [^"]+"`));
    for (const log of [refused, dead]) {
      assert.doesNotMatch(log, /SECRET-API-KEY|service=turn|http:\/\/|127\.0\.0\.1:9\b/, log);
      assert.doesNotMatch(log, new RegExp(served.base.replace('http://', '')), log);
    }
    // --log-sensitive names scheme and host for debugging, still never the path or the query.
    const sensitive = await failedFlow(['--log-sensitive', '--credentials-url', refusedUrl]);
    assert.match(
      sensitive,
      new RegExp(`"message":"flow closed: no upstream credential: the credential URL ${served.base.replace(/\./g, '\\.')} answered HTTP 40[13]"`),
    );
    assert.doesNotMatch(sensitive, /SECRET-API-KEY|service=turn/, sensitive);
    // A mistyped URL is not echoed either: stderr often ends up in a log too.
    const typo = await runCli([
      'client',
      '--server',
      `tcp://127.0.0.1:${coturn.port}`,
      '--allow-plaintext-upstream',
      '--allow-non-tor-socks',
      '--socks',
      `127.0.0.1:${socksPort}`,
      '--credentials-url',
      'not a url?key=SECRET-API-KEY-3',
    ]);
    assert.equal(typo.code, 2);
    assert.equal(typo.stderr, 'onionturn: --credentials-url is not a URL\n');
  });
});
