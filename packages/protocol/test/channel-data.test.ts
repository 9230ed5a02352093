import { test } from 'node:test';
import assert from 'node:assert/strict';
import { channelDataToTcp, channelDataToUdp, decodeChannelData, encodeChannelData } from '../src/index.js';

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

test('UDP form <-> TCP form', () => {
  const unpadded = encodeChannelData(0x4001, Buffer.from('abcde'), false);
  const tcp = channelDataToTcp(unpadded);
  assert.equal(tcp.toString('hex'), '4001000561626364650000' + '00');
  assert.equal(channelDataToTcp(tcp), tcp, 'already padded: the same buffer');
  assert.deepEqual(channelDataToUdp(tcp), unpadded);
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
