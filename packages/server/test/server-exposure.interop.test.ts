// What an operator is told at start when something is exposed beyond the machine, and the
// credential endpoint's bearer key. Non-loopback addresses live in a network namespace of the
// test's own (11.0.0.1 public-looking, 10.9.9.9 private as behind 1:1 NAT).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { freePort, NetNamespace, ProcessGroup, runCli, startServer, testTempDir } from '@onionturn/testkit';

test('warnings at start: --user on the command line, metrics and credentials beyond loopback, a private relay address without --external-ip', async (t) => {
  const dir = testTempDir(t);
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'exposure-secret\n', { mode: 0o600 });
  const ns = NetNamespace.create(['11.0.0.1', '10.9.9.9']);
  const group = new ProcessGroup();
  t.after(async () => {
    await group.stopAll();
    ns.delete();
  });
  const server = await startServer(
    group,
    ['--user', 'alice:wonderland', '--secret-file', secret, '--relay-ip', '10.9.9.9', '--metrics', '11.0.0.1:9464', '--credentials-listen', '11.0.0.1:8088'],
    {},
    { listen: ['tcp://11.0.0.1:3478'], netns: ns },
  );
  const out = server.process.output();
  assert.match(out, /--user NAME:PASSWORD shows the password to every user via ps/);
  assert.match(out, /--metrics 11\.0\.0\.1:9464 is reachable beyond this machine/);
  assert.match(out, /--credentials-listen 11\.0\.0\.1:8088 is reachable beyond this machine.*--credentials-key-file/);
  assert.match(out, /private address 10\.9\.9\.9 and no --external-ip/);
  assert.doesNotMatch(out, /wonderland/, 'the password itself is never printed');
});

test('--credentials-key-file: the endpoint answers 401 without the key, a credential with it', async (t) => {
  const dir = testTempDir(t);
  const secret = join(dir, 'secret');
  const key = join(dir, 'key');
  writeFileSync(secret, 'exposure-secret\n', { mode: 0o600 });
  writeFileSync(key, 'bearer-key-123\n', { mode: 0o600 });
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const port = await freePort('127.0.0.1');
  const server = await startServer(group, ['--secret-file', secret, '--credentials-listen', `127.0.0.1:${port}`, '--credentials-key-file', key]);
  assert.doesNotMatch(server.process.output(), /reachable beyond this machine/, 'loopback is not warned about');
  const url = `http://127.0.0.1:${port}/credentials`;
  assert.equal((await fetch(url)).status, 401);
  assert.equal((await fetch(url, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  const ok = await fetch(url, { headers: { authorization: 'Bearer bearer-key-123' } });
  assert.equal(ok.status, 200);
  const body = (await ok.json()) as { username: string; password: string };
  assert.match(body.username, /^\d+:/);
});

test("'server-started' means the credential endpoint listens too: one whose port is taken stops the server before that line", async (t) => {
  const dir = testTempDir(t);
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'exposure-secret\n', { mode: 0o600 });
  const taken = createServer();
  taken.listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.after(() => taken.close());
  const port = (taken.address() as { port: number }).port;
  for (const workers of ['1', '2']) {
    const run = await runCli([
      'server',
      '--listen',
      'tcp://127.0.0.1:0',
      '--relay-ports',
      '40000-40999',
      '--workers',
      workers,
      '--secret-file',
      secret,
      '--credentials-listen',
      `127.0.0.1:${port}`,
    ]);
    const out = run.stdout + run.stderr;
    assert.equal(run.code, 1, out);
    assert.match(out, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
    assert.doesNotMatch(out, /server-started/, `--workers ${workers}: no line says it started`);
  }
});

/** One HTTP request on its own connection, after a PROXY line naming tor circuit `circuit`. */
async function viaCircuit(port: number, circuit: number): Promise<number> {
  const sock = connect(port, '127.0.0.1');
  await once(sock, 'connect');
  let text = '';
  sock.on('data', (c: Buffer) => (text += c.toString('latin1')));
  sock.write(`PROXY TCP6 fc00:dead:beef:4dad::${circuit.toString(16)} ::1 65535 80\r\nGET /credentials HTTP/1.1\r\nHost: x.onion\r\nConnection: close\r\n\r\n`);
  await once(sock, 'close');
  return Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0);
}

test('--tor-circuit-id: behind an onion service the credential rate limit is per circuit, not per 127.0.0.1', async (t) => {
  const dir = testTempDir(t);
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'exposure-secret\n', { mode: 0o600 });
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const port = await freePort('127.0.0.1');
  await startServer(group, ['--secret-file', secret, '--credentials-listen', `127.0.0.1:${port}`, '--tor-circuit-id']);
  // 60 at once, then one a second: on a busy machine a token or two may come back meanwhile.
  const first: number[] = [];
  while (first.length < 80 && first.at(-1) !== 429) first.push(await viaCircuit(port, 7));
  assert.equal(first.at(-1), 429, `the circuit is limited after its burst: ${first.length} requests`);
  assert.ok(first.length >= 61, 'a circuit gets its 60 at once');
  assert.deepEqual([...new Set(first.slice(0, -1))], [200]);
  assert.equal(await viaCircuit(port, 8), 200, 'another circuit is still served');
  // Without the PROXY line nothing is served (tor always sends it when configured).
  const plain = connect(port, '127.0.0.1');
  plain.on('error', () => undefined);
  await once(plain, 'connect');
  const closed = once(plain, 'close');
  plain.write('GET /credentials HTTP/1.1\r\nHost: x\r\n\r\n');
  await closed;
});
