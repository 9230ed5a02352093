// The status page's default port: random on first start, then kept (like the local password).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateStatusPort, statusPortPath } from '../src/status-port.js';
import { UsageError } from '../src/exit-codes.js';

test('status port: next to the local password; made once (0600, below the ephemeral range), then the same', () => {
  assert.equal(statusPortPath({ XDG_CONFIG_HOME: '/x/conf' }), '/x/conf/onionturn/status-port');
  const dir = mkdtempSync(join(tmpdir(), 'onionturn-status-port-'));
  try {
    const path = join(dir, 'onionturn', 'status-port');
    const first = loadOrCreateStatusPort(path);
    assert.equal(first.created, true);
    assert.ok(first.port >= 10_000 && first.port <= 32_767, String(first.port));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(loadOrCreateStatusPort(path), { port: first.port, created: false });
    writeFileSync(path, 'garbage\n');
    assert.throws(
      () => loadOrCreateStatusPort(path),
      (e: unknown) => e instanceof UsageError && /holds no port number/.test(e.message),
    );
    assert.equal(readFileSync(path, 'utf8'), 'garbage\n', 'a bad file is reported, never overwritten');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
