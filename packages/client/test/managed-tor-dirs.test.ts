// The embedded tor's housekeeping that needs no tor: stale data directories of dead shims are
// removed, live ones kept; a tor path that is a directory is "not installed", not a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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

test('a stale-looking directory that is a link, or belongs to another user, or whose torrc is a link, is not touched', (t) => {
  const parent = mkdtempSync(join(tmpdir(), 'onionturn-test-'));
  const elsewhere = mkdtempSync(join(tmpdir(), 'onionturn-test-target-'));
  t.after(() => {
    rmSync(parent, { recursive: true, force: true });
    rmSync(elsewhere, { recursive: true, force: true });
  });
  const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid as number;
  // A directory of someone's with a torrc naming a dead shim, reached through a link.
  const target = torDir(elsewhere, 'precious', dead);
  symlinkSync(target, join(parent, 'onionturn-tor-link'));
  // A real directory whose torrc is a link to a file elsewhere.
  const linkedTorrc = join(parent, 'onionturn-tor-linked-torrc');
  mkdirSync(linkedTorrc);
  symlinkSync(join(target, 'onionturn-torrc'), join(linkedTorrc, 'onionturn-torrc'));
  const others = torDir(parent, 'onionturn-tor-others', dead);
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  if (uid === 0) {
    chownSync(others, 12345, 12345);
    chownSync(join(others, 'onionturn-torrc'), 12345, 12345);
  }
  assert.equal(removeStaleDataDirs(parent), uid === 0 ? 0 : 1);
  assert.equal(existsSync(join(target, 'onionturn-torrc')), true, 'the link target keeps its files');
  assert.equal(existsSync(linkedTorrc), true);
  if (uid === 0) assert.equal(existsSync(others), true, "another user's directory stays");
});

test('a tor path that is a directory is reported as missing tor, without a crash', async () => {
  const r = await startManagedTor({ logger: createLogger({ level: 'error' }), torPath: tmpdir() });
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.error.code, 'tor-missing');
});
