// The credential URL's deadline runs on the injected clock: a SOCKS port that accepts and never
// answers (a real loopback socket) gives up exactly when the fake clock reaches the timeout, and
// not a millisecond before, with no sleep in the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { setImmediate as macrotask } from 'node:timers/promises';
import { ManualClock } from '../src/clock.js';
import { UrlCredentialSource, type CredentialResult } from '../src/upstream-credentials.js';

test('a credential URL that never answers fails at the timeout of the injected clock', async (t) => {
  const held: Socket[] = [];
  const silent = createServer((s) => void held.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of held) s.destroy();
    silent.close();
  });
  const port = (silent.address() as { port: number }).port;
  const clock = new ManualClock();
  const source = new UrlCredentialSource(new URL('http://credentials.example.onion/turn'), { host: '127.0.0.1', port }, { timeoutMs: 30_000, clock });
  let result: CredentialResult | undefined;
  const obtained = source.obtain(undefined, clock.now()).then((r) => (result = r));
  await new Promise<void>((r) => silent.once('connection', () => r()));
  clock.advance(29_999);
  await macrotask();
  assert.equal(result, undefined, 'still waiting 1 ms before the deadline');
  clock.advance(1);
  await obtained;
  assert.deepEqual(result, { ok: false, error: { code: 'credentials', reason: 'the credential URL did not answer within 30000 ms' } });
  assert.equal(clock.pending, 0, 'no timer left behind');
});
