// `onionturn credentials serve`, as a real process, over real HTTP on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRestUsername, verify } from '@onionturn/credentials';
import { ProcessGroup } from '@onionturn/testkit';
import { startServe, tempDir } from './run-cli.js';

const SECRET = 'serve-test-secret';
const URI = 'turn:127.0.0.1:3478?transport=tcp';

interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

async function call(url: string, init: RequestInit = {}): Promise<Reply> {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

test('serve: draft API and /credentials, JSON errors, no-store, clean stop on SIGTERM', async (t) => {
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const { base, process: served } = await startServe(group, ['--uri', URI, '--ttl', '3600', '--rate-limit', '0'], { ONIONTURN_SECRET: SECRET });

  const draft = await call(`${base}/?service=turn&username=x`);
  assert.equal(draft.status, 200);
  assert.equal(draft.headers.get('cache-control'), 'no-store');
  assert.match(draft.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(Object.keys(draft.body), ['username', 'password', 'ttl', 'uris']);
  assert.match(String(draft.body['username']), /^\d+:x$/);
  assert.equal(draft.body['ttl'], 3600);
  assert.deepEqual(draft.body['uris'], [URI]);
  assert.ok(verify(String(draft.body['username']), String(draft.body['password']), { secrets: [SECRET], maxTtl: 3600 }).ok);

  const plain = await call(`${base}/credentials`);
  assert.equal(plain.status, 200);
  const id = parseRestUsername(String(plain.body['username']))?.id ?? '';
  assert.match(id, /^[A-Za-z0-9_-]{22}$/, 'random id without a label');
  const other = await call(`${base}/credentials`);
  assert.notEqual(other.body['username'], plain.body['username']);

  for (const method of ['POST', 'PUT', 'DELETE']) {
    const r = await call(`${base}/?service=turn`, { method });
    assert.equal(r.status, 405, method);
    assert.equal(r.headers.get('allow'), 'GET');
    assert.equal(r.body['error'], 'method-not-allowed');
    assert.equal(r.headers.get('cache-control'), 'no-store');
  }
  const wrongService = await call(`${base}/?service=stun`);
  assert.equal(wrongService.status, 400);
  assert.equal(wrongService.body['error'], 'bad-service');
  const notFound = await call(`${base}/admin`);
  assert.equal(notFound.status, 404);
  assert.equal(notFound.body['error'], 'not-found');

  const pid = served.pid;
  const exited = new Promise<number | null>((resolve) => served.child.once('exit', (code) => resolve(code)));
  process.kill(pid, 'SIGTERM');
  assert.equal(await exited, 0);
  assert.ok(!served.output().includes(SECRET), 'the secret is never logged');
  assert.ok(!served.output().includes(String(draft.body['password'])), 'passwords are never logged');
});

test('serve: API key from a file (query key, X-API-Key, Bearer); missing or wrong key is 401', async (t) => {
  const dir = tempDir(t);
  const keyFile = join(dir, 'api-key');
  writeFileSync(keyFile, 'k-123\n', { mode: 0o600 });
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const { base } = await startServe(group, ['--api-key-file', keyFile, '--uri', URI], { ONIONTURN_SECRET: SECRET });
  assert.equal((await call(`${base}/credentials`)).status, 401);
  assert.equal((await call(`${base}/credentials?key=wrong`)).status, 401);
  const missing = await call(`${base}/?service=turn`);
  assert.equal(missing.body['error'], 'unauthorized');
  assert.equal((await call(`${base}/?service=turn&key=k-123`)).status, 200);
  assert.equal((await call(`${base}/credentials`, { headers: { 'x-api-key': 'k-123' } })).status, 200);
  assert.equal((await call(`${base}/credentials`, { headers: { authorization: 'Bearer k-123' } })).status, 200);
});

test('serve: the request rate is bounded (429 with Retry-After); --no-labels refuses labels', async (t) => {
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const { base } = await startServe(group, ['--rate-limit', '3', '--no-labels'], { ONIONTURN_SECRET: SECRET });
  const statuses: number[] = [];
  let limited: Reply | undefined;
  for (let i = 0; i < 5; i++) {
    const r = await call(`${base}/credentials`);
    statuses.push(r.status);
    if (r.status === 429) limited ??= r;
  }
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  assert.equal(limited?.body['error'], 'rate-limited');
  assert.ok(Number(limited?.headers.get('retry-after')) >= 1);
  assert.equal(limited?.headers.get('cache-control'), 'no-store');

  const group2 = new ProcessGroup();
  t.after(() => group2.stopAll());
  const other = await startServe(group2, ['--no-labels'], { ONIONTURN_SECRET: SECRET });
  const labelled = await call(`${other.base}/?service=turn&username=alice`);
  assert.equal(labelled.status, 400);
  assert.equal(labelled.body['error'], 'labels-disabled');
});
