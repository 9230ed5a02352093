// The SOCKS5 codec without sockets, and the edge cases npm run fuzz found (fuzz/corpus/socks5-codec/crash-*).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUpstream } from '../src/index.js';
import { connectReplyLength, encodeConnect, encodeGreeting, replyText } from '../src/socks5-codec.js';

test('SOCKS5 codec: names are sent as names, IPs as addresses, replies sized, Tor codes explained', () => {
  assert.deepEqual([...encodeConnect('example.onion', 443)], [5, 1, 0, 3, 13, ...Buffer.from('example.onion'), 1, 187]);
  assert.deepEqual([...encodeConnect('127.0.0.1', 80)], [5, 1, 0, 1, 127, 0, 0, 1, 0, 80]);
  assert.equal(encodeConnect('::1', 80).length, 3 + 17 + 2);
  assert.deepEqual([...encodeGreeting(undefined)], [5, 1, 0]);
  assert.deepEqual([...encodeGreeting({ username: 'u', password: 'p' })], [5, 2, 2, 0]);
  assert.equal(connectReplyLength(Buffer.from([5, 0, 0, 1, 0, 0, 0])), 0);
  assert.equal(connectReplyLength(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9])), 10);
  assert.equal(connectReplyLength(Buffer.from([5, 0, 0, 9, 0])), -1);
  assert.match(replyText(0xf6), /invalid onion address/);
  assert.match(replyText(0x05), /refused/);
  assert.match(replyText(0x99), /unknown SOCKS reply 0x99/);
});

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
