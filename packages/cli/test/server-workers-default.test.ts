// --workers when not given (issue 17): one worker per core once a TCP listener spreads
// connections over them; 1 with only UDP listeners (one worker would own them all), and 1 with a
// TLS listener while mobility is on (a TLS take-over cannot move to the worker holding the allocation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultWorkers } from '../src/commands/server.js';

test('--workers defaults to the number of cores with a tcp:// listener, to 1 with only udp:// or with tls:// and mobility, never above the relay ports', () => {
  assert.equal(defaultWorkers([{ protocol: 'tcp' }], 8, 16384), 8);
  assert.equal(defaultWorkers([{ protocol: 'udp' }, { protocol: 'tcp' }], 4, 16384), 4);
  assert.equal(defaultWorkers([{ protocol: 'udp' }, { protocol: 'tls' }], 4, 16384), 1, 'TLS take-overs would get 437 on another worker');
  assert.equal(defaultWorkers([{ protocol: 'tcp' }, { protocol: 'tls' }], 4, 16384, true), 1);
  assert.equal(defaultWorkers([{ protocol: 'udp' }, { protocol: 'tls' }], 4, 16384, false), 4, 'with --no-mobility nothing is lost');
  assert.equal(defaultWorkers([{ protocol: 'udp' }], 8, 16384), 1);
  assert.equal(defaultWorkers([{ protocol: 'tcp' }], 1, 16384), 1);
  assert.equal(defaultWorkers([{ protocol: 'tcp' }], 8, 3), 3);
});
