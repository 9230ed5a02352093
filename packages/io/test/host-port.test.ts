// The one HOST:PORT parser every command and the shim read addresses with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHostPort, isLoopbackAddress, parseHostPort } from '../src/index.js';

test('parseHostPort: names, IPv4, bracketed IPv6; port 0 only when asked; one-line reasons', () => {
  assert.deepEqual(parseHostPort('turn.example.org:3478'), { ok: true, value: { host: 'turn.example.org', port: 3478 } });
  assert.deepEqual(parseHostPort('[::1]:9050'), { ok: true, value: { host: '::1', port: 9050 } });
  assert.deepEqual(parseHostPort('127.0.0.1:0', true), { ok: true, value: { host: '127.0.0.1', port: 0 } });
  assert.deepEqual(parseHostPort('127.0.0.1:0'), { ok: false, reason: "port in '127.0.0.1:0' is not 1-65535" });
  assert.deepEqual(parseHostPort('::1:80'), { ok: false, reason: "'::1:80' is not HOST:PORT (IPv6 as [ADDR]:PORT)" });
  assert.deepEqual(parseHostPort('[x]:80'), { ok: false, reason: "'x' in brackets is not an IPv6 address" });
  assert.deepEqual(parseHostPort('a_b:80'), { ok: false, reason: "'a_b' is neither an IP address nor a hostname" });
});

test('formatHostPort brackets IPv6; isLoopbackAddress trusts 127/8 and ::1, never a name', () => {
  assert.equal(formatHostPort('::1', 3478), '[::1]:3478');
  assert.equal(formatHostPort('127.0.0.1', 3478), '127.0.0.1:3478');
  assert.equal(isLoopbackAddress('127.4.5.6'), true);
  assert.equal(isLoopbackAddress('::ffff:127.0.0.1'), true);
  assert.equal(isLoopbackAddress('localhost'), false);
  assert.equal(isLoopbackAddress('10.0.0.1'), false);
});
