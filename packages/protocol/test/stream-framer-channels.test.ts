// Channel number ranges in the TCP framer, and frames staying intact after delivery (relays
// hand them to async sends).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameKind, StreamFramer, encodeChannelData } from '../src/index.js';

function legacyFrame(channel: number, data: Buffer): Buffer {
  const out = Buffer.alloc(4 + data.length + ((4 - (data.length & 3)) & 3));
  out.writeUInt16BE(channel, 0);
  out.writeUInt16BE(data.length, 2);
  data.copy(out, 4);
  return out;
}

test('RFC 8656 range by default: channel 0x7b8b is a framing error', () => {
  const f = new StreamFramer(() => assert.fail('no frame expected'));
  const err = f.push(legacyFrame(0x7b8b, Buffer.from('abc')));
  assert.equal(err?.code, 'bad-channel-number');
});

test('rfc5766Channels accepts 0x5000-0x7FFF and strips padding', () => {
  const got: string[] = [];
  const f = new StreamFramer(
    (frame, kind) => {
      assert.equal(kind, FrameKind.ChannelData);
      got.push(frame.toString('hex'));
    },
    { rfc5766Channels: true },
  );
  assert.equal(f.push(Buffer.concat([legacyFrame(0x7b8b, Buffer.from('abc')), legacyFrame(0x7fff, Buffer.from('defg'))])), undefined);
  assert.deepEqual(got, ['7b8b0003616263', '7fff000464656667']);
});

test('delivered frames keep their bytes after later pushes', () => {
  const kept: Buffer[] = [];
  const f = new StreamFramer((frame) => kept.push(frame));
  const a = encodeChannelData(0x4001, Buffer.from('hello'), true);
  const b = encodeChannelData(0x4002, Buffer.from('world!'), true);
  // Split across chunks so the framer assembles them itself.
  const all = Buffer.concat([a, b]);
  for (let i = 0; i < all.length; i += 3) f.push(Buffer.from(all.subarray(i, i + 3)));
  f.push(Buffer.from(encodeChannelData(0x4003, Buffer.from('zzzzzzzz'), true)));
  assert.deepEqual(
    kept.map((k) => k.subarray(4).toString()),
    ['hello', 'world!', 'zzzzzzzz'],
  );
});
