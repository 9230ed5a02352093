// How the shell turns a socket's remote address into a STUN transport address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttributeType, MessageBuilder, MessageClass, Method } from '@onionturn/protocol';
import { addressOf } from '../src/node-server.js';

test('addressOf: a link-local zone is stripped, IPv4-mapped sources become IPv4', () => {
  assert.deepEqual(addressOf('fe80::1%eth0', 5), { family: 'IPv6', address: 'fe80::1', port: 5 });
  assert.deepEqual(addressOf('::ffff:192.0.2.1', 6), { family: 'IPv4', address: '192.0.2.1', port: 6 });
  assert.equal(addressOf(undefined, 1), undefined);
  // The Binding response for such a client can be written.
  const res = new MessageBuilder(Method.Binding, MessageClass.SuccessResponse)
    .add(AttributeType.XorMappedAddress, { kind: 'address', address: addressOf('fe80::1%eth0', 5)! })
    .build();
  assert.ok(res.length > 20);
});
