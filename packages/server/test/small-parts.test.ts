// The relay port pool and token buckets (nonces: credentials/test/nonce-issuer.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttributeType, MessageBuilder, MessageClass, Method } from '@onionturn/protocol';
import { PortPool, TokenBucket } from '../src/index.js';
import { addressOf } from '../src/node-server.js';

test('port pool: random order, quarantine before reuse, exhaustion', () => {
  const pool = new PortPool(40000, 40009, 1000);
  const taken = new Set<number>();
  for (let i = 0; i < 10; i++) taken.add(pool.take(0)!);
  assert.equal(taken.size, 10);
  assert.equal(pool.take(0), undefined);
  pool.give(40003, 0);
  pool.give(40004, 500);
  assert.equal(pool.take(1000), 40003, 'out of quarantine (40004 still rests)');
  pool.give(40003, 1000);
  // Nothing free: the longest-resting quarantined port is reused early (availability first).
  assert.equal(pool.take(1001), 40004);
  assert.equal(pool.earlyReuses, 1);
  assert.equal(pool.take(1002), 40003);
  assert.equal(pool.take(1003), undefined, 'every port in use');
  const resting = new PortPool(40000, 40001, 1000);
  const first = resting.take(0)!;
  resting.give(first, 0);
  assert.notEqual(resting.take(1), first, 'a free port is preferred to a quarantined one');
  const orders = new Set<string>();
  for (let k = 0; k < 5; k++) {
    const p = new PortPool(40000, 40099, 0);
    orders.add(String([p.take(0), p.take(0), p.take(0)]));
  }
  assert.ok(orders.size > 1, 'not sequential');
  const even = new PortPool(40000, 40099, 0);
  for (let i = 0; i < 20; i++) assert.equal(even.take(0, true)! % 2, 0);
  const pairs = new PortPool(40000, 40009, 0);
  const got: number[] = [];
  for (let i = 0; i < 5; i++) got.push(...pairs.takePair(0)!);
  assert.deepEqual(got.sort((x, y) => x - y), [40000, 40001, 40002, 40003, 40004, 40005, 40006, 40007, 40008, 40009]);
  assert.equal(pairs.takePair(0), undefined);
});

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

test('REST secrets: every secret newest first, expiry carried, expired and too-far usernames unknown', async () => {
  const { restSecrets } = await import('../src/index.js');
  const { restPassword } = await import('@onionturn/credentials');
  const now = 1_700_000_000_000;
  const lookup = restSecrets({ secrets: ['new', 'old'], maxTtl: 3600 });
  const user = `${now / 1000 + 600}:abc`;
  const c = lookup(user, 'r', now);
  assert.deepEqual(c, { passwords: [restPassword('new', user), restPassword('old', user)], expiresAtMs: now + 600_000 });
  assert.equal(lookup(`${now / 1000 - 3600}:abc`, 'r', now), undefined);
  assert.equal(lookup(`${now / 1000 + 86400}:abc`, 'r', now), undefined);
  assert.equal(lookup('alice', 'r', now), undefined);
});

test('addressOf: a link-local zone is stripped, IPv4-mapped sources become IPv4', () => {
  assert.deepEqual(addressOf('fe80::1%eth0', 5), { family: 'IPv6', address: 'fe80::1', port: 5 });
  assert.deepEqual(addressOf('::ffff:192.0.2.1', 6), { family: 'IPv4', address: '192.0.2.1', port: 6 });
  assert.equal(addressOf(undefined, 1), undefined);
  // The Binding response for such a client can be written.
  const res = new MessageBuilder(Method.Binding, MessageClass.SuccessResponse)
    .add(AttributeType.XorMappedAddress, { kind: 'address', address: addressOf('fe80::1%eth0', 5)! })
    .build();
  assert.ok(res.length > 20);
});
