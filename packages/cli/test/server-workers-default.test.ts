// --workers when not given (issue 17): one worker per core once a TCP/TLS listener spreads
// connections over them; 1 with only UDP listeners (one worker would own them all).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultWorkers } from '../src/commands/server.js';

test('--workers defaults to the number of cores with a tcp:// or tls:// listener, to 1 with only udp://, never above the relay ports', () => {
  assert.equal(defaultWorkers([{ protocol: 'tcp' }], 8, 16384), 8);
  assert.equal(defaultWorkers([{ protocol: 'udp' }, { protocol: 'tls' }], 4, 16384), 4);
  assert.equal(defaultWorkers([{ protocol: 'udp' }], 8, 16384), 1);
  assert.equal(defaultWorkers([{ protocol: 'tcp' }], 1, 16384), 1);
  assert.equal(defaultWorkers([{ protocol: 'tcp' }], 8, 3), 3);
});
