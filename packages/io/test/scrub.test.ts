// SafeLogging by key, shared by the server's and the shim's loggers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SENSITIVE_KEYS, scrub } from '../src/scrub.js';

test('scrub: sensitive keys are replaced unless detail is on; the rest and the input are untouched', () => {
  const fields = { flow: 3, app: '127.0.0.1:5000', username: '1900000000:abc', peer: '198.51.100.7:9', kind: 'udp' };
  assert.deepEqual(scrub(fields, false), { flow: 3, app: '[scrubbed]', username: '[scrubbed]', peer: '[scrubbed]', kind: 'udp' });
  assert.deepEqual(scrub(fields, true), fields);
  assert.notEqual(scrub(fields, true), fields, 'a copy');
  assert.equal(fields.app, '127.0.0.1:5000');
  for (const k of ['username', 'client', 'peer', 'address', 'remote', 'app']) assert.ok(SENSITIVE_KEYS.has(k), k);
});
