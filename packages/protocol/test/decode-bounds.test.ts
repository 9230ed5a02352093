// Decoding is linear in the input and bounded in what it keeps: a message of thousands of tiny
// attributes (all distinct, unknown and comprehension-required) is refused after MAX_ATTRIBUTES,
// before any per-attribute bookkeeping can grow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_ATTRIBUTES, decodeMessage } from '../src/index.js';

/** A Binding request of `n` zero-length attributes of distinct types 0x4000.. (unknown, required). */
function manyAttributes(n: number): Buffer {
  const buf = Buffer.alloc(20 + 4 * n);
  buf.writeUInt16BE(0x0001, 0);
  buf.writeUInt16BE(4 * n, 2);
  buf.writeUInt32BE(0x2112a442, 4);
  for (let i = 0; i < n; i++) buf.writeUInt16BE(0x4000 + i, 20 + 4 * i);
  return buf;
}

test('a message of more than MAX_ATTRIBUTES attributes is refused (too-many-attributes)', () => {
  const r = decodeMessage(manyAttributes(16_383));
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.error.code, 'too-many-attributes');
  assert.equal(decodeMessage(manyAttributes(MAX_ATTRIBUTES + 1)).ok, false);
});

test('up to MAX_ATTRIBUTES distinct unknown required attributes decode, each listed once', () => {
  const r = decodeMessage(manyAttributes(MAX_ATTRIBUTES));
  assert.ok(r.ok);
  assert.equal(r.value.unknownRequired.length, MAX_ATTRIBUTES);
  const dup = manyAttributes(4);
  dup.writeUInt16BE(0x4000, 24); // the second repeats the first type
  const d = decodeMessage(dup);
  assert.ok(d.ok);
  assert.deepEqual(d.value.unknownRequired, [0x4000, 0x4002, 0x4003]);
});
