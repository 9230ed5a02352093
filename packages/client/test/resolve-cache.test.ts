// Names resolved by Tor are kept a fixed time, per isolation key: two identities never share one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RESOLVE_CACHE_MS, ResolveCache } from '../src/resolve-cache.js';
import { SocksIsolation } from '../src/socks-front.js';

const A = { kind: 'ip', host: '192.0.2.1', family: 4 } as const;

test('resolve cache: per isolation key, a fixed lifetime, case and trailing dot folded, bounded', () => {
  const c = new ResolveCache(RESOLVE_CACHE_MS, 2);
  c.set('alice', 'Example.TEST.', A, 0);
  assert.deepEqual(c.get('alice', 'example.test', 1), A);
  assert.equal(c.get('bob', 'example.test', 1), undefined, 'another identity does its own lookup');
  assert.equal(c.get('alice', 'example.test', RESOLVE_CACHE_MS), undefined, 'expired');
  c.set('a', 'x', A, 0);
  c.set('b', 'x', A, 0);
  c.set('c', 'x', A, 0);
  assert.equal(c.size, 2);
  assert.equal(c.get('a', 'x', 1), undefined, 'the oldest went first');
  c.sweep(RESOLVE_CACHE_MS);
  assert.equal(c.size, 0);
});

test('SOCKS username/password maps to an isolation of its own: same pair same circuit, another pair another; nothing of the pair shows', () => {
  const iso = new SocksIsolation();
  const a = iso.of({ username: 'alice', password: 'pw' });
  assert.deepEqual(iso.of({ username: 'alice', password: 'pw' }), a);
  assert.notDeepEqual(iso.of({ username: 'alice', password: 'pw2' }), a);
  assert.notDeepEqual(iso.of({ username: 'bob', password: 'pw' }), a);
  assert.doesNotMatch(`${a.username}${a.password}`, /alice|pw/);
  assert.notDeepEqual(new SocksIsolation().of({ username: 'alice', password: 'pw' }), a, 'a new run, new credentials');
});
