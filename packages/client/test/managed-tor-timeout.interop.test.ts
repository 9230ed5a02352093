// The managed tor's bootstrap deadline runs on the injected clock: a "tor" that never bootstraps
// (a real child process that only waits) is given up exactly at the deadline of the fake clock,
// stopped by its PID, and its data directory's files stay (the directory was given).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as macrotask } from 'node:timers/promises';
import { ManualClock } from '../src/clock.js';
import { createLogger } from '../src/logger.js';
import { startManagedTor, type ManagedTorResult } from '../src/managed-tor.js';

test('tor that never bootstraps: timeout at the injected deadline, the child stopped', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'onionturn-fake-tor-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const torPath = join(dir, 'tor');
  // Says one line as tor would, then waits; SIGTERM ends it (exec: the PID is the shell's).
  const pidFile = join(dir, 'pid');
  writeFileSync(torPath, `#!/bin/sh\necho $$ > ${pidFile}\necho "Dec 04 12:00:00.000 [notice] Tor 0.4.8 (fake) running"\nexec sleep 600\n`, { mode: 0o755 });
  const clock = new ManualClock();
  let result: ManagedTorResult | undefined;
  const started = startManagedTor({ logger: createLogger({ level: 'error' }), torPath, dataDir: join(dir, 'data'), bootstrapTimeoutMs: 120_000, clock }).then(
    (r) => (result = r),
  );
  while (!existsSync(pidFile) || readFileSync(pidFile, 'utf8') === '') await macrotask();
  const pid = Number(readFileSync(pidFile, 'utf8'));
  clock.advance(119_999);
  await macrotask();
  assert.equal(result, undefined, 'still waiting 1 ms before the deadline');
  clock.advance(1);
  await started;
  assert.deepEqual(result, { ok: false, error: { code: 'timeout', reason: 'tor did not bootstrap within 120 s (last: -1%)' } });
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the fake tor was stopped');
});
