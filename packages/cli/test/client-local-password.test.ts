// The random local password of `onionturn client` (local-credential mode without --local-password):
// where it lives, that it is made once with mode 0600 and read back after a restart, and that
// clients starting at the same moment (threads here) agree on one password. Files only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
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
  assert.throws(
    () => loadOrCreateLocalPassword(path),
    (e: unknown) => e instanceof UsageError && /is empty/.test(e.message),
  );
});

/** Runs loadOrCreateLocalPassword in `workers` threads at once per path: truly parallel, like two shims starting. */
async function createConcurrently(paths: readonly string[], workers: number): Promise<{ password: string; created: boolean }[][]> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  // Each round waits at the flag so all threads enter the function together.
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { moduleUrl, paths, flag } = workerData;
    import(moduleUrl).then(({ loadOrCreateLocalPassword }) => {
      parentPort.postMessage('ready');
      paths.forEach((path, round) => {
        while (Atomics.load(flag, 0) <= round) Atomics.wait(flag, 0, round);
        try {
          const r = loadOrCreateLocalPassword(path);
          parentPort.postMessage({ round, password: r.password, created: r.created });
        } catch (e) {
          parentPort.postMessage({ round, error: String(e) });
        }
      });
    });`;
  const moduleUrl = new URL('../src/local-password.js', import.meta.url).href;
  const threads = Array.from({ length: workers }, () => new Worker(code, { eval: true, workerData: { moduleUrl, paths, flag } }));
  try {
    const results: { round: number; password?: string; created?: boolean; error?: string }[] = [];
    const ready = threads.map((w) => once(w, 'message'));
    for (const w of threads) w.on('message', (m: unknown) => typeof m === 'object' && results.push(m as (typeof results)[number]));
    await Promise.all(ready);
    const byRound: { password: string; created: boolean }[][] = [];
    for (let round = 0; round < paths.length; round++) {
      Atomics.store(flag, 0, round + 1);
      Atomics.notify(flag, 0);
      const deadline = Date.now() + 10_000;
      while (results.filter((r) => r.round === round).length < workers) {
        if (Date.now() > deadline) throw new Error(`round ${round}: only ${results.filter((r) => r.round === round).length} of ${workers} threads answered`);
        await new Promise((r) => setTimeout(r, 5));
      }
      const mine = results.filter((r) => r.round === round);
      for (const r of mine) assert.equal(r.error, undefined, `round ${round}: ${r.error}`);
      byRound.push(mine.map((r) => ({ password: r.password as string, created: r.created as boolean })));
    }
    return byRound;
  } finally {
    await Promise.all(threads.map((w) => w.terminate()));
  }
}

test('loadOrCreateLocalPassword: shims starting at the same moment end up with one password, one file, mode 0600', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'onionturn-localpw-race-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Fresh paths per round: the race is the first start, when no file exists yet.
  const paths = Array.from({ length: 25 }, (_, i) => join(dir, `conf${i}`, 'onionturn', 'local-password'));
  const rounds = await createConcurrently(paths, 4);
  rounds.forEach((results, i) => {
    const path = paths[i] as string;
    const onDisk = readFileSync(path, 'utf8');
    assert.deepEqual(new Set(results.map((r) => r.password)), new Set([onDisk.trim()]), `round ${i}: every thread has the file's password`);
    assert.equal(onDisk, `${results[0]?.password}\n`);
    assert.equal(results.filter((r) => r.created).length, 1, `round ${i}: exactly one thread created it`);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    // No temporary files left beside it.
    assert.deepEqual(readdirSync(join(dir, `conf${i}`, 'onionturn')), ['local-password']);
  });
});
