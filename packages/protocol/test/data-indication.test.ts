import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttributeType,
  MessageBuilder,
  MessageClass,
  Method,
  dataIndicationLength,
  decodeMessage,
  parseIp,
  readAddressAttribute,
  readAttribute,
  writeDataIndication,
} from '../src/index.js';

for (const [address, size] of [
  ['192.0.2.7', 5],
  ['2001:db8::1', 8],
  ['203.0.113.9', 0],
] as const) {
  test(`writeDataIndication matches the builder byte for byte (${address}, ${size} bytes)`, () => {
    const tid = Buffer.from('0102030405060708090a0b0c', 'hex');
    const data = Buffer.from('abcdefgh'.slice(0, size));
    const ip = parseIp(address)!;
    const out = Buffer.alloc(dataIndicationLength(ip.length, data.length) + 7, 0xee);
    const n = writeDataIndication(out, tid, ip, 40000, data);
    const family = ip.length === 4 ? 'IPv4' : 'IPv6';
    const want = new MessageBuilder(Method.Data, MessageClass.Indication, tid)
      .add(AttributeType.XorPeerAddress, { kind: 'address', address: { family, address, port: 40000 } })
      .add(AttributeType.Data, { kind: 'bytes', bytes: data })
      .build();
    assert.equal(n, want.length);
    assert.deepEqual(out.subarray(0, n), want);
    const msg = decodeMessage(out.subarray(0, n));
    assert.ok(msg.ok);
    assert.deepEqual(readAddressAttribute(msg.value, AttributeType.XorPeerAddress), { family, address, port: 40000 });
    const d = readAttribute(msg.value, AttributeType.Data);
    assert.ok(d?.ok && d.value.kind === 'bytes');
    assert.deepEqual(d.value.bytes, data);
  });
}

test('writeDataIndication returns -1 for data too big for a 16-bit STUN length, and writes nothing', () => {
  const tid = Buffer.alloc(12, 1);
  const ip6 = parseIp('2001:db8::1')!;
  const fits = Buffer.alloc(65504);
  const out = Buffer.alloc(dataIndicationLength(16, 65505), 0xee);
  assert.equal(writeDataIndication(out, tid, ip6, 1, fits), dataIndicationLength(16, fits.length));
  out.fill(0xee);
  assert.equal(writeDataIndication(out, tid, ip6, 1, Buffer.alloc(65505)), -1);
  assert.ok(out.every((b) => b === 0xee));
  assert.equal(writeDataIndication(out, tid, parseIp('192.0.2.1')!, 1, Buffer.alloc(65507)), dataIndicationLength(4, 65507), 'IPv4 peers always fit');
});
