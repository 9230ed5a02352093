// The app-server snippets of docs/app-developers.md, run as written (ES modules importing the
// real @onionturn/credentials): what they issue verifies against the secret, and the endpoint
// answers a credential with the TURN URIs. A renamed export or option fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { verify } from '@onionturn/credentials';
import { repoRoot } from '@onionturn/testkit';

const root = repoRoot() ?? process.cwd();

function snippet(name: string): string {
  const doc = readFileSync(join(root, 'docs', 'app-developers.md'), 'utf8');
  const m = new RegExp(`<!-- snippet: ${name} -->\\n\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(doc);
  if (!m?.[1]) throw new Error(`docs/app-developers.md has no snippet '${name}'`);
  return m[1];
}

/** Imports a snippet as a module placed inside the repository, so its imports resolve to the workspace packages. */
async function load<T>(name: string): Promise<T> {
  const dir = mkdtempSync(join(root, 'packages', 'cli', '.guide-snippet-'));
  try {
    const file = join(dir, `${name}.mjs`);
    writeFileSync(file, snippet(name));
    return (await import(pathToFileURL(file).href)) as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const SECRET = 'a-shared-secret-for-the-guide-test';

test('guide snippet "issue": turnCredentials() makes a credential the server accepts, for 4 hours', async () => {
  const { turnCredentials } = await load<{ turnCredentials: (s: string) => { username: string; password: string; ttl: number } }>('issue');
  const c = turnCredentials(SECRET);
  assert.equal(c.ttl, 4 * 3600);
  const v = verify(c.username, c.password, { secrets: [SECRET], maxTtl: 4 * 3600 });
  assert.ok(v.ok, JSON.stringify(v));
  assert.doesNotMatch(c.username, /alice|user/);
  assert.throws(() => turnCredentials(''), /secret/);
});

test('guide snippet "endpoint": credentialServer() answers GET /credentials with a credential and the URIs; the API key is required', async () => {
  const { credentialServer } = await load<{ credentialServer: (s: string, uris: string[], keys: string[]) => Server }>('endpoint');
  const uris = ['turn:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion:3478?transport=tcp'];
  const server = credentialServer(SECRET, uris, ['app-key']);
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    assert.equal((await fetch(`${base}/credentials`)).status, 401);
    const res = await fetch(`${base}/credentials`, { headers: { 'x-api-key': 'app-key' } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { username: string; password: string; ttl: number; uris: string[] };
    assert.deepEqual(body.uris, uris);
    assert.ok(verify(body.username, body.password, { secrets: [SECRET], maxTtl: 4 * 3600 }).ok);
  } finally {
    await new Promise((r) => server.close(r));
  }
});
