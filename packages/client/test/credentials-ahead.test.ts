// The upstream credential fetched ahead for a held stream's flow (credentials-ahead.ts), with a
// fake source: no sockets, no Tor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AHEAD_MAX_AGE_MS, CredentialsAhead } from '../src/credentials-ahead.js';
import { upstreamError } from '../src/errors.js';
import type { SocksAuth } from '../src/socks5-codec.js';
import type { CredentialResult, CredentialSource } from '../src/upstream-credentials.js';

const A: SocksAuth = { username: 'iso-a', password: 'x' };
const B: SocksAuth = { username: 'iso-b', password: 'x' };

/** Counts fetches per isolation; each answers a fresh credential (or fails while `failing`). */
class FakeSource implements CredentialSource {
  readonly description = 'fake';
  readonly fetches: string[] = [];
  failing = false;
  throwing = false;
  obtain(auth: SocksAuth | undefined, now: number): Promise<CredentialResult> {
    const n = this.fetches.push(auth?.username ?? '-');
    if (this.throwing) return Promise.reject(new Error('boom'));
    if (this.failing) return Promise.resolve({ ok: false, error: upstreamError('credentials', 'no') });
    return Promise.resolve({ ok: true, value: { username: `u${n}`, password: 'p', expiresAt: now + 3_600_000 } });
  }
}

const user = (r: CredentialResult): string => (r.ok ? r.value.username : `failed: ${r.error.reason}`);

test('a credential fetched ahead for a held stream goes to the flow on that isolation, once; others fetch their own', async () => {
  const src = new FakeSource();
  const ahead = new CredentialsAhead(src);
  ahead.fetchAhead(A, 0);
  ahead.fetchAhead(A, 10);
  assert.deepEqual(src.fetches, ['iso-a'], 'one fetch per held stream, at once');
  assert.equal(user(await ahead.obtain(A, 500)), 'u1', 'the flow on the held stream gets it, no fetch of its own');
  assert.deepEqual(src.fetches, ['iso-a']);
  assert.equal(user(await ahead.obtain(A, 600)), 'u2', 'given out once: one credential per flow');
  assert.equal(user(await ahead.obtain(B, 700)), 'u3', 'another isolation fetches its own');
  assert.equal(user(await ahead.obtain(undefined, 800)), 'u4');
  assert.equal(ahead.aheadCount, 0);
});

test('a held stream that went untaken takes its credential with it; one too old or failed is fetched again', async () => {
  const src = new FakeSource();
  const ahead = new CredentialsAhead(src);
  ahead.fetchAhead(A, 0);
  ahead.forget(A);
  assert.equal(ahead.aheadCount, 0);
  assert.equal(user(await ahead.obtain(A, 100)), 'u2', 'forgotten: fetched anew');

  ahead.fetchAhead(B, 1000);
  assert.equal(user(await ahead.obtain(B, 1000 + AHEAD_MAX_AGE_MS)), 'u4', 'too old: fetched anew');
  ahead.fetchAhead(A, 2000);
  ahead.fetchAhead(B, 2000 + AHEAD_MAX_AGE_MS);
  assert.equal(ahead.aheadCount, 1, 'a stale one is pruned by the next fetch ahead');

  src.failing = true;
  ahead.fetchAhead(A, 200_000);
  src.failing = false;
  assert.equal(user(await ahead.obtain(A, 200_100)), 'u8', 'the fetch ahead failed: the flow fetches again');

  src.throwing = true;
  ahead.fetchAhead(B, 300_000);
  src.throwing = false;
  assert.equal(user(await ahead.obtain(B, 300_100)), 'u10', 'a source that throws neither crashes nor sticks');
});
