// The CLI's listen parsing and loopback check are the client's (@onionturn/client), so every
// command agrees on what a listen address is and what counts as loopback. Pure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopback, parseListen } from '../src/config.js';
import { UsageError } from '../src/exit-codes.js';

test('isLoopback: 127/8, ::1 and IPv4-mapped 127/8 only; names are not trusted', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::FFFF:127.9.9.9']) assert.equal(isLoopback(h), true, h);
  for (const h of ['localhost', '0.0.0.0', '::', '10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', 'example.org', '']) assert.equal(isLoopback(h), false, h);
});

test('parseListen: HOST:PORT, [V6]:PORT, a bare port on 127.0.0.1, port 0; one-line errors', () => {
  assert.deepEqual(parseListen('127.0.0.1:8088'), { host: '127.0.0.1', port: 8088 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListen('8088'), { host: '127.0.0.1', port: 8088 });
  assert.deepEqual(parseListen('0.0.0.0:3478'), { host: '0.0.0.0', port: 3478 });
  assert.deepEqual(parseListen('turn.example:3478'), { host: 'turn.example', port: 3478 });
  for (const bad of ['nowhere', '127.0.0.1:65536', '[127.0.0.1]:1', '::1:80', 'a b:1', '127.0.0.1:']) {
    assert.throws(
      () => parseListen(bad),
      (e: unknown) => e instanceof UsageError && /cannot parse listen address/.test(e.message),
      bad,
    );
  }
});
