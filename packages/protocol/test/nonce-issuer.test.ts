// Stateless nonces: good for one client and a while, never a clock reading; with the RFC 8489
// cookie (the server) or without it (the client shim, which offers no PASSWORD-ALGORITHMS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NONCE_COOKIE, NO_NONCE_COOKIE, NonceIssuer } from '../src/index.js';

test('nonces: good for their client and lifetime only, and never a clock reading', () => {
  const n = new NonceIssuer(600_000);
  const t = 1_700_000_000_000;
  const nonce = n.issue('udp|1.2.3.4|5', t);
  assert.ok(nonce.startsWith(NONCE_COOKIE));
  assert.ok(nonce.length < 128);
  assert.equal(n.check(nonce, 'udp|1.2.3.4|5', t + 599_000), 'ok');
  assert.equal(n.check(nonce, 'udp|1.2.3.4|5', t + 601_000), 'stale');
  assert.equal(n.check(nonce, 'udp|1.2.3.4|6', t), 'invalid');
  const flip = (i: number): string => nonce.slice(0, i) + (nonce[i] === 'Q' ? 'R' : 'Q') + nonce.slice(i + 1);
  for (const i of [13, 20, 30, nonce.length - 1]) assert.equal(n.check(flip(i), 'udp|1.2.3.4|5', t), 'invalid', `changed at ${i}`);
  assert.equal(n.check('obMatJos2AAAB', 'udp|1.2.3.4|5', t), 'invalid');
  assert.equal(new NonceIssuer(600_000).check(nonce, 'udp|1.2.3.4|5', t), 'invalid', 'another server secret');
  // Two servers started at the same moment give different stamps: the origin is random.
  assert.notEqual(new NonceIssuer(1).issue('k', t).slice(13, 19), new NonceIssuer(1).issue('k', t).slice(13, 19));
});

test('nonces without the cookie: same checks, 22 base64url characters', () => {
  const n = new NonceIssuer(600_000, undefined, undefined, NO_NONCE_COOKIE);
  const t = 1_700_000_000_000;
  const nonce = n.issue('127.0.0.1|5000', t);
  assert.match(nonce, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(n.check(nonce, '127.0.0.1|5000', t + 1000), 'ok');
  assert.equal(n.check(nonce, '127.0.0.1|5001', t), 'invalid');
  assert.equal(n.check(nonce, '127.0.0.1|5000', t + 601_000), 'stale');
  assert.equal(n.check(NONCE_COOKIE + nonce, '127.0.0.1|5000', t), 'invalid');
});
