// SOCKS5 codec edge cases found by npm run fuzz (fuzz/corpus/socks5-codec/crash-*).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeConnect, parseUpstream } from '../src/index.js';

test('SOCKS5 CONNECT to a scoped IPv6 address is refused with a RangeError, not a TypeError', () => {
  // node:net calls these IPv6; SOCKS5 has no room for a zone index, and through Tor it means nothing.
  for (const host of ['fe80::1%eth0', '::%P']) assert.throws(() => encodeConnect(host, 443), RangeError, host);
  assert.equal(encodeConnect('fe80::1', 443).length, 3 + 17 + 2);
});

test('an upstream server SOCKS5 cannot name is refused when the configuration is read, not when a flow dials', () => {
  // Before, encodeConnect threw inside the SOCKS data handler of the first flow.
  assert.equal(parseUpstream('tcp://[fe80::1%eth0]:3478').ok, false);
  assert.equal(parseUpstream(`tcp://${'a'.repeat(250)}.onion:3478`).ok, false);
  assert.equal(parseUpstream('tcp://[fe80::1]:3478').ok, true);
});
