// The iceServers the shim prints for apps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iceServers } from '../src/ice-servers.js';

test('iceServers: UDP and TCP urls for the listener', () => {
  assert.deepEqual(iceServers('::1', 3478, { username: 'u', password: 'p' }), [
    { urls: ['turn:[::1]:3478?transport=udp', 'turn:[::1]:3478?transport=tcp'], username: 'u', credential: 'p' },
  ]);
});
