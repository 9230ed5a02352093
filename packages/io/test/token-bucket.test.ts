// The token bucket the quotas and rate limits use (nonces: protocol/test/nonce-issuer.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../src/index.js';

test('token bucket: burst, refill, unlimited when the rate is 0', () => {
  const b = new TokenBucket(100, 100, 0);
  assert.equal(b.take(60, 0), true);
  assert.equal(b.take(60, 0), false);
  assert.equal(b.take(60, 200), true);
  const u = new TokenBucket(0, 0, 0);
  assert.equal(u.take(1e9, 0), true);
  assert.equal(u.msUntil(1e9, 0), 0);
});

test('token bucket: msUntil says when a take would succeed, and takes nothing', () => {
  const b = new TokenBucket(5, 2, 0);
  assert.equal(b.msUntil(1, 0), 0);
  assert.equal(b.take(2, 0), true);
  assert.equal(b.msUntil(1, 0), 200);
  assert.equal(b.msUntil(1, 100), 100);
  assert.equal(b.take(1, 150), false);
  assert.equal(b.msUntil(2, 200), 200);
  assert.equal(b.take(1, 200), true, 'msUntil took no token');
  assert.equal(b.msUntil(3, 200), Infinity, 'more than the burst never comes');
});
