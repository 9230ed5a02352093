import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WireKind, decodeChannelData, encodeChannelData, wireKindOf } from '../src/index.js';

test('ChannelData round-trips with and without padding', () => {
  for (let len = 0; len < 9; len++) {
    const data = Buffer.alloc(len, 0x5a);
    for (const pad of [false, true]) {
      const enc = encodeChannelData(0x4abc, data, pad);
      assert.equal(enc.length, 4 + len + (pad ? (4 - (len % 4)) % 4 : 0));
      const r = decodeChannelData(enc);
      assert.ok(r.ok);
      assert.equal(r.value.channel, 0x4abc);
      assert.deepEqual(r.value.data, data);
    }
  }
});

test('the first byte tells STUN (0b00), ChannelData (0b01) and neither apart', () => {
  assert.deepEqual([0x00, 0x01, 0x3f, 0x40, 0x4f, 0x7f, 0x80, 0x16, 0x47, 0xff].map(wireKindOf), [
    WireKind.Stun,
    WireKind.Stun,
    WireKind.Stun,
    WireKind.ChannelData,
    WireKind.ChannelData,
    WireKind.ChannelData,
    WireKind.Other,
    WireKind.Stun,
    WireKind.ChannelData,
    WireKind.Other,
  ]);
  assert.equal(wireKindOf(encodeChannelData(0x4001, Buffer.from('x'), true)[0]!), WireKind.ChannelData);
});

test('bad ChannelData is an error value', () => {
  const cases: [string, string][] = [
    ['40', 'truncated'],
    ['00000000', 'not-channel-data'],
    ['50000000', 'bad-channel-number'],
    ['7fff0000', 'bad-channel-number'],
    ['40000004aabb', 'truncated'],
    ['40000001aa000000ff', 'bad-length'],
  ];
  for (const [h, code] of cases) {
    const r = decodeChannelData(Buffer.from(h, 'hex'));
    assert.equal(r.ok, false, h);
    if (!r.ok) assert.equal(r.error.code, code, h);
  }
  assert.throws(() => encodeChannelData(0x3fff, Buffer.alloc(1), true), RangeError);
});
