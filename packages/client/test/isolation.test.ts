// SOCKS credentials per flow (Tor's IsolateSOCKSAuth).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IsolationPolicy } from '../src/isolation.js';

test('isolation: per-flow fresh credentials, shared one pair', () => {
  const p = new IsolationPolicy('per-flow');
  assert.notEqual(p.next().username, p.next().username);
  const s = new IsolationPolicy('shared');
  assert.deepEqual(s.next(), s.next());
});
