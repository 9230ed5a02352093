// What npm start relies on in the bridge: the shim on the port it is given, in local-credential
// mode with the password `onionturn client` keeps (the same for the next shim: app configs
// survive restarts), and a server credential endpoint whose answer carries its TURN URIs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startBridge } from '../src/index.js';

test('npm start bridge: given shim port, kept local password, credential endpoint with uris', async (t) => {
  // The CLI keeps its password under $XDG_CONFIG_HOME: a directory of this test's own.
  const config = mkdtempSync(join(tmpdir(), 'onionturn-bridge-config-'));
  const before = process.env['XDG_CONFIG_HOME'];
  process.env['XDG_CONFIG_HOME'] = config;
  t.after(() => {
    if (before === undefined) delete process.env['XDG_CONFIG_HOME'];
    else process.env['XDG_CONFIG_HOME'] = before;
    rmSync(config, { recursive: true, force: true });
  });
  const port = await freePort();
  const bridge = await startBridge({ port, localCredentials: { user: 'onionturn' } });
  t.after(() => bridge.stop());

  assert.equal(bridge.shim.port, port);
  const kept = readFileSync(join(config, 'onionturn', 'local-password'), 'utf8').trim();
  assert.deepEqual(bridge.shim.local, { username: 'onionturn', password: kept });
  const again = await bridge.addShim(bridge.server, { localCredentials: { user: 'onionturn' } });
  assert.equal(again.local?.password, kept, 'the next shim uses the same kept password');

  const res = await fetch(`http://127.0.0.1:${bridge.server.credentialPort}/credentials`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { username: string; uris: string[] };
  assert.deepEqual(body.uris, [`turn:127.0.0.1:${bridge.server.port}?transport=tcp`]);
  assert.deepEqual(bridge.server.uris, body.uris);
});
