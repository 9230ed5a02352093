// `onionturn client` as a user runs it: the real binary, Debian microsocks as the SOCKS port,
// coturn upstream, coturn's uclient as the app.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessGroup, runUclient, startCoturn, startMicrosocks, startTurnutilsPeer, waitFor, type Coturn, shimArgs } from '@onionturn/testkit';
import { runCli, spawnClient } from './run-cli.js';

const SECRET = 'cli-client-secret';

describe('onionturn client', () => {
  const group = new ProcessGroup();
  let coturn: Coturn;
  let peerPort: number;
  let socksPort: number;

  before(async () => {
    coturn = await startCoturn(group, { secrets: [SECRET], verbose: false });
    peerPort = (await startTurnutilsPeer(group)).port;
    socksPort = (await startMicrosocks(group)).port;
  });
  after(() => group.stopAll());

  test('prints iceServers, relays uclient over UDP through SOCKS, stops on SIGTERM', async () => {
    const cli = spawnClient(group, ['--no-status', ...shimArgs({ serverPort: coturn.port, socks: socksPort, notTor: true })]);
    let stdout = '';
    cli.child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    const port = await waitFor(
      'iceServers on stdout',
      () => {
        if (cli.child.exitCode !== null) throw new Error(`client exited: ${cli.output()}`);
        return /"turn:127\.0\.0\.1:(\d+)\?transport=udp"/.exec(stdout)?.[1];
      },
      10_000,
      50,
    );
    const ice = JSON.parse(stdout) as { iceServers: { urls: string[] }[] };
    assert.deepEqual(ice.iceServers[0]?.urls, [`turn:127.0.0.1:${port}?transport=udp`, `turn:127.0.0.1:${port}?transport=tcp`]);
    const r = await runUclient(group, {
      server: { host: '127.0.0.1', port: Number(port) },
      peer: { host: '127.0.0.1', port: peerPort },
      secret: SECRET,
      tcp: false,
      noRtcp: true,
      messages: 20,
    });
    assert.equal(r.sent, 20, r.output.slice(-600));
    assert.equal(r.received, 20);
    // SafeLogging: the app's address is nowhere in the log.
    // App addresses are scrubbed by key (SafeLogging): the field may be there, its value never.
    assert.doesNotMatch(cli.output(), /"app":"(?!\[scrubbed\])/);
    cli.child.kill('SIGTERM');
    await waitFor('exit', () => cli.child.exitCode !== null, 5000);
    assert.equal(cli.child.exitCode, 0, cli.output());
  });

  test('bad values are one line and exit 2', async () => {
    const remote = await runCli(['client', '--server', `tcp://127.0.0.1:${coturn.port}`, '--allow-plaintext-upstream', '--listen', '192.0.2.1:3478']);
    assert.equal(remote.code, 2);
    assert.equal(remote.stderr, 'onionturn: --listen: 192.0.2.1 is not a loopback address; pass --allow-remote to listen there\n');
    const env = await runCli(['client', '--listen', '127.0.0.1:0'], { env: { ONIONTURN_SERVER: 'udp://x:1' } });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /^onionturn: --server: server 'udp:\/\/x:1': scheme must be tcp:\/\/ or tls:\/\/\n$/);
    // The test-only list of SOCKS ports tried by default is checked like --socks, and stays out of --help.
    const candidates = await runCli(['client', '--server', `tcp://127.0.0.1:${coturn.port}`, '--allow-plaintext-upstream', '--listen', '127.0.0.1:0'], {
      env: { ONIONTURN_DEFAULT_SOCKS: '127.0.0.1:9050,nonsense' },
    });
    assert.equal(candidates.code, 2);
    assert.match(candidates.stderr, /^onionturn: --default-socks: .*nonsense.*\n$/);
    assert.doesNotMatch((await runCli(['client', '--help'])).stdout, /default-socks/);
    // Plain TURN or HTTP to a clearnet host crosses the exit in the clear: refused, with the way out.
    const clear = await runCli(['client', '--server', 'tcp://turn.example:3478', '--listen', '127.0.0.1:0', '--socks', '127.0.0.1:1']);
    assert.equal(clear.code, 2);
    assert.match(
      clear.stderr,
      /^onionturn: --server tcp:\/\/turn\.example:3478 would cross the Tor exit in the clear: .*tls:\/\/HOST:PORT with --pin.*--allow-plaintext-upstream for tests\)\n$/,
    );
    const http = await runCli([
      'client',
      '--server',
      'abcdefgh.onion:3478',
      '--listen',
      '127.0.0.1:0',
      '--socks',
      '127.0.0.1:1',
      '--credentials-url',
      'http://creds.example/?service=turn',
    ]);
    assert.equal(http.code, 2);
    assert.match(http.stderr, /^onionturn: a plain-HTTP --credentials-url would cross the Tor exit in the clear/);
    const pin = await runCli(['client', '--server', 'tls://turn.example:5349', '--pin', 'sha1/abc']);
    assert.equal(pin.code, 2);
    assert.match(pin.stderr, /--pin: pin 'sha1\/abc' must be sha256\//);
    // The status page listens on loopback only.
    for (const status of ['192.0.2.1:8080', 'localhost:8080', 'nonsense']) {
      const r = await runCli([
        'client',
        '--server',
        `tcp://127.0.0.1:${coturn.port}`,
        '--allow-plaintext-upstream',
        '--listen',
        '127.0.0.1:0',
        '--status',
        status,
      ]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^onionturn: --status: .*\n$/);
    }
    for (const rate of ['-1', 'many']) {
      const r = await runCli([
        'client',
        '--server',
        `tcp://127.0.0.1:${coturn.port}`,
        '--allow-plaintext-upstream',
        '--listen',
        '127.0.0.1:0',
        '--new-flows-per-second',
        rate,
      ]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^onionturn: --new-flows-per-second must be a number of 0 or more \(0: no limit\), got '(-1|NaN)'\n$/);
    }
  });
});
