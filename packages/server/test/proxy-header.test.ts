// Tor's PROXY v1 line (HiddenServiceExportCircuitID haproxy): parsed strictly, bounded, never throws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROXY_V1_MAX, parseProxyV1 } from '../src/index.js';

test("tor's line: the circuit id is the last 32 bits of the fc00:dead:beef:4dad::/64 source", () => {
  const line = 'PROXY TCP6 fc00:dead:beef:4dad::ffff:ffff ::1 65535 42\r\n';
  const p = parseProxyV1(Buffer.from(`${line}rest`));
  assert.equal(p.kind, 'ok');
  assert.ok(p.kind === 'ok');
  assert.equal(p.length, line.length);
  assert.equal(p.circuitId, 4294967295);
  assert.deepEqual(p.source, { family: 'IPv6', address: 'fc00:dead:beef:4dad::ffff:ffff', port: 65535 });
  const small = parseProxyV1(Buffer.from('PROXY TCP6 fc00:dead:beef:4dad::0:2a ::1 65535 3478\r\n'));
  assert.ok(small.kind === 'ok' && small.circuitId === 42);
  const v4 = parseProxyV1(Buffer.from('PROXY TCP4 192.0.2.7 198.51.100.1 40000 3478\r\n'));
  assert.ok(v4.kind === 'ok' && v4.circuitId === undefined && v4.source?.address === '192.0.2.7');
  const unknown = parseProxyV1(Buffer.from('PROXY UNKNOWN\r\n'));
  assert.ok(unknown.kind === 'ok' && unknown.source === undefined);
});

test('incomplete while it could still be a PROXY line; an error otherwise, and past 107 bytes', () => {
  for (const part of ['', 'P', 'PROXY', 'PROXY TCP6 fc00:dead:beef']) assert.equal(parseProxyV1(Buffer.from(part)).kind, 'incomplete', part);
  const bad = [
    '\x00\x01\x00\x00', // a STUN message: no PROXY line at all
    'GET / HTTP/1.1\r\n',
    'PROXY TCP6 1.2.3.4 ::1 1 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 70000 1\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n',
    'PROXY TCP4 127.1 5.6.7.8 1 2\r\n',
    `PROXY TCP6 ${'a'.repeat(PROXY_V1_MAX)}`,
  ];
  for (const b of bad) assert.equal(parseProxyV1(Buffer.from(b, 'latin1')).kind, 'error', JSON.stringify(b));
});
