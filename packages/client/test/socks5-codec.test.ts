// The SOCKS5 codec without sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
