// The random local password of `onionturn client` (local-credential mode without --local-password):
// where it lives, that it is made once with mode 0600 and read back after a restart. Files only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateLocalPassword, localPasswordPath, newLocalPassword } from '../src/local-password.js';
import { UsageError } from '../src/exit-codes.js';

test('localPasswordPath: $XDG_CONFIG_HOME when absolute, else ~/.config', () => {
  assert.equal(localPasswordPath({ XDG_CONFIG_HOME: '/x/conf' }, '/home/u'), '/x/conf/onionturn/local-password');
  assert.equal(localPasswordPath({}, '/home/u'), '/home/u/.config/onionturn/local-password');
  assert.equal(localPasswordPath({ XDG_CONFIG_HOME: '' }, '/home/u'), '/home/u/.config/onionturn/local-password');
  assert.equal(localPasswordPath({ XDG_CONFIG_HOME: 'rel/conf' }, '/home/u'), '/home/u/.config/onionturn/local-password');
});

test('newLocalPassword: 24 URL-safe characters, never the same', () => {
  const a = newLocalPassword();
  assert.match(a, /^[A-Za-z0-9_-]{24}$/);
  assert.notEqual(a, newLocalPassword());
  assert.notEqual(a, 'onionturn');
});

test('loadOrCreateLocalPassword: made once (0600 in a 0700 directory), then read back', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'onionturn-localpw-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'conf', 'onionturn', 'local-password');
  const first = loadOrCreateLocalPassword(path);
  assert.equal(first.created, true);
  assert.match(first.password, /^[A-Za-z0-9_-]{24}$/);
  assert.equal(readFileSync(path, 'utf8'), `${first.password}\n`);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'conf', 'onionturn')).mode & 0o777, 0o700);
  const second = loadOrCreateLocalPassword(path);
  assert.deepEqual(second, { password: first.password, path, created: false });
  // A file others can read is used, with a warning (as ssh does).
  chmodSync(path, 0o644);
  const modes: number[] = [];
  assert.equal(loadOrCreateLocalPassword(path, (m) => modes.push(m)).password, first.password);
  assert.deepEqual(modes, [0o644]);
  // A user's own choice in the file is kept; an empty file is an error, not a silent new password.
  writeFileSync(path, '  chosen  \n');
  assert.equal(loadOrCreateLocalPassword(path).password, 'chosen');
  writeFileSync(path, '\n');
  assert.throws(() => loadOrCreateLocalPassword(path), (e: unknown) => e instanceof UsageError && /is empty/.test(e.message));
});
