// `onionturn probe` (the real binary) against an independent STUN/TURN server: Debian coturn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ProcessGroup, TOOLS, freePort, requireTool, startMicrosocks, startServer, testTempDir, waitFor } from '@onionturn/testkit';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection } from 'node:net';

const BIN = fileURLToPath(new URL('../../bin/onionturn.js', import.meta.url));

function cli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test('onionturn probe gets a Binding success from coturn over TCP, and fails cleanly on a closed port', async (t) => {
  const turnserver = requireTool(TOOLS.turnserver);
  const port = await freePort();
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const ts = group.spawn('turnserver', turnserver, [
    '--no-tls',
    '--no-dtls',
    '--no-cli',
    '--listening-ip',
    '127.0.0.1',
    '-p',
    String(port),
    '--use-auth-secret',
    '--static-auth-secret=probe-test',
    '--realm=probe.test',
    '--log-file',
    'stdout',
    '--simple-log',
  ]);
  await waitFor(
    'turnserver to listen',
    async () => {
      if (ts.child.exitCode !== null) throw new Error(`turnserver exited: ${ts.output()}`);
      return listening(port);
    },
    10_000,
  );

  const ok = await cli(['probe', `tcp://127.0.0.1:${port}`]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`^ok tcp://127\\.0\\.0\\.1:${port}: Binding success in \\d+ ms, XOR-MAPPED-ADDRESS 127\\.0\\.0\\.1:\\d+\\n$`));

  // Through a SOCKS5 proxy, as through Tor's SocksPort (the shim's own SOCKS client).
  const socks = await startMicrosocks(group);
  const via = await cli(['probe', `tcp://127.0.0.1:${port}`, '--socks', `127.0.0.1:${socks.port}`, '--timeout', '5000']);
  assert.equal(via.code, 0, via.stderr);
  assert.match(via.stdout, new RegExp(`^ok tcp://127\\.0\\.0\\.1:${port} via socks5://127\\.0\\.0\\.1:${socks.port}: Binding success in \\d+ ms`));

  const fromEnv = await cli(['probe'], { ONIONTURN_LISTEN: `udp://0.0.0.0:${port} tcp://0.0.0.0:${port}` });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);

  const closed = await freePort();
  const bad = await cli(['probe', `tcp://127.0.0.1:${closed}`, '--timeout', '2000']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /^onionturn: probe tcp:\/\/127\.0\.0\.1:\d+ failed after \d+ ms: cannot connect: .*ECONNREFUSED.*\n$/);
  assert.equal(bad.stderr.split('\n').length, 2, 'one line');
});

// The compose healthcheck in onion mode: the server reads tor's PROXY line first (--tor-circuit-id),
// so a probe that speaks STUN at once is closed; with ONIONTURN_TOR_CIRCUIT_ID (the server's own
// variable) the probe sends "PROXY UNKNOWN" first and is answered.
test('onionturn probe against a server with --tor-circuit-id: fails without the PROXY line, succeeds with ONIONTURN_TOR_CIRCUIT_ID', async (t) => {
  const dir = testTempDir(t);
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'probe-proxy-secret\n', { mode: 0o600 });
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const server = await startServer(group, ['--secret-file', secret, '--tor-circuit-id'], {}, { listen: ['tcp://127.0.0.1:0'] });
  const target = `tcp://127.0.0.1:${server.tcp}`;
  const plain = await cli(['probe', target, '--timeout', '3000']);
  assert.equal(plain.code, 1, plain.stdout);
  const flag = await cli(['probe', target, '--tor-circuit-id', '--timeout', '3000']);
  assert.equal(flag.code, 0, flag.stderr);
  assert.match(flag.stdout, /Binding success in \d+ ms, XOR-MAPPED-ADDRESS 127\.0\.0\.1:\d+\n$/);
  const env = await cli(['probe', '--timeout', '3000'], { ONIONTURN_LISTEN: target, ONIONTURN_TOR_CIRCUIT_ID: 'true' });
  assert.equal(env.code, 0, env.stderr);
});
