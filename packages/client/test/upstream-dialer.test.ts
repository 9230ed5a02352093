// How the dialer names servers in logs (SafeLogging), without sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUpstream } from '../src/endpoints.js';
import { serverName } from '../src/upstream-dialer.js';

test('serverName: the label only with detail, else its place in the list (SafeLogging)', () => {
  const list = ['tcp://turn.example:3478', `${'a'.repeat(56)}.onion:3478`].map((t) => {
    const r = parseUpstream(t);
    if (!r.ok) throw new Error(r.reason);
    return r.value;
  });
  assert.equal(serverName(list, 0, false), 'server #1');
  assert.equal(serverName(list, 1, false), 'server #2');
  assert.equal(serverName(list, 0, true), 'tcp://turn.example:3478');
  assert.equal(serverName(list, 1, true), `${'a'.repeat(56)}.onion:3478`);
});
