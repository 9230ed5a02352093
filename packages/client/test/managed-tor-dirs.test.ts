// The embedded tor's housekeeping that needs no tor: stale data directories of dead shims are
// removed, live ones kept; a tor path that is a directory is "not installed", not a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/logger.js';
import { removeStaleDataDirs } from '../src/managed-tor.js';
import { startManagedTor } from '../src/index.js';

function torDir(parent: string, name: string, owner: number | undefined): string {
  const dir = join(parent, name);
  mkdirSync(dir);
  if (owner !== undefined) writeFileSync(join(dir, 'onionturn-torrc'), `DataDirectory ${dir}\n__OwningControllerProcess ${owner}\n`);
  return dir;
}

test('stale tor data directories of dead shims are removed; live, foreign and unreadable ones stay', (t) => {
  const parent = mkdtempSync(join(tmpdir(), 'onionturn-test-'));
  t.after(() => rmSync(parent, { recursive: true, force: true }));
  // A PID that surely is gone: a child that already exited.
  const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid as number;
  const stale = torDir(parent, 'onionturn-tor-stale', dead);
  const live = torDir(parent, 'onionturn-tor-live', process.ppid);
  const own = torDir(parent, 'onionturn-tor-own', process.pid);
  const noTorrc = torDir(parent, 'onionturn-tor-starting', undefined);
  const foreign = torDir(parent, 'something-else', dead);
  assert.equal(removeStaleDataDirs(parent), 1);
  assert.equal(existsSync(stale), false);
  for (const kept of [live, own, noTorrc, foreign]) assert.equal(existsSync(kept), true, kept);
});

test('a tor path that is a directory is reported as missing tor, without a crash', async () => {
  const r = await startManagedTor({ logger: createLogger({ level: 'error' }), torPath: tmpdir() });
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.error.code, 'tor-missing');
});
