import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttributeType, FrameKind, MessageBuilder, MessageClass, Method, StreamFramer, encodeChannelData, type FramingError } from '../src/index.js';

interface Got {
  kind: FrameKind;
  hex: string;
}

function frameAll(chunks: Buffer[], max?: number): { frames: Got[]; error: FramingError | undefined } {
  const frames: Got[] = [];
  const framer = new StreamFramer((f, kind) => frames.push({ kind, hex: f.toString('hex') }), max ? { maxFrameLength: max } : {});
  let error: FramingError | undefined;
  for (const c of chunks) error ??= framer.push(c);
  return { frames, error };
}

/** A stream of mixed frames and the frames the framer must give back. */
function sampleStream(seed: number): { stream: Buffer; expected: Got[] } {
  const parts: Buffer[] = [];
  const expected: Got[] = [];
  let x = seed;
  const rnd = (n: number): number => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x % n;
  };
  for (let i = 0; i < 12; i++) {
    if (rnd(2) === 0) {
      const data = Buffer.alloc(rnd(40), i);
      const ch = encodeChannelData(0x4000 + rnd(0x1000), data, true);
      parts.push(ch);
      expected.push({ kind: FrameKind.ChannelData, hex: ch.subarray(0, 4 + data.length).toString('hex') });
    } else {
      const b = new MessageBuilder(Method.Send, MessageClass.Indication);
      b.add(AttributeType.XorPeerAddress, { kind: 'address', address: { family: 'IPv4', address: '192.0.2.7', port: 9 } });
      b.add(AttributeType.Data, { kind: 'bytes', bytes: Buffer.alloc(rnd(30), 0xaa) });
      const m = b.build({ fingerprint: rnd(2) === 0 });
      parts.push(m);
      expected.push({ kind: FrameKind.Stun, hex: m.toString('hex') });
    }
  }
  return { stream: Buffer.concat(parts), expected };
}

test('the same frames come out for every two-way split of the stream', () => {
  const { stream, expected } = sampleStream(7);
  for (let cut = 0; cut <= stream.length; cut++) {
    const { frames, error } = frameAll([stream.subarray(0, cut), stream.subarray(cut)]);
    assert.equal(error, undefined);
    assert.deepEqual(frames, expected, `split at ${cut}`);
  }
});

test('the same frames come out byte by byte and in random chunkings', () => {
  for (let seed = 1; seed < 30; seed++) {
    const { stream, expected } = sampleStream(seed);
    assert.deepEqual(frameAll([...stream].map((b) => Buffer.from([b]))).frames, expected);
    const chunks: Buffer[] = [];
    let pos = 0;
    let x = seed;
    while (pos < stream.length) {
      x = (x * 48271) % 2147483647;
      const n = 1 + (x % 97);
      chunks.push(stream.subarray(pos, pos + n));
      pos += n;
    }
    assert.deepEqual(frameAll(chunks).frames, expected);
  }
});

test('many frames in one chunk are handed out as views, without copies', () => {
  const { stream, expected } = sampleStream(3);
  const views: Buffer[] = [];
  const framer = new StreamFramer((f) => views.push(f));
  assert.equal(framer.push(stream), undefined);
  assert.equal(views.length, expected.length);
  for (const v of views) assert.equal(v.buffer, stream.buffer);
  assert.equal(framer.buffered, 0);
});

test('ChannelData padding is stripped; an empty ChannelData frame works', () => {
  const { frames } = frameAll([Buffer.from('40000001ab000000', 'hex'), Buffer.from('40010000', 'hex')]);
  assert.deepEqual(frames, [
    { kind: FrameKind.ChannelData, hex: '40000001ab' },
    { kind: FrameKind.ChannelData, hex: '40010000' },
  ]);
});

test('garbage is a framing error and nothing more is emitted', () => {
  const { stream, expected } = sampleStream(5);
  const framer = new StreamFramer(() => undefined);
  assert.equal(framer.push(Buffer.from([0x80, 0, 0, 0]))?.code, 'garbage');
  assert.equal(framer.push(stream)?.code, 'garbage');
  for (const [bytes, code] of [
    ['c0000000', 'garbage'],
    ['50000004', 'bad-channel-number'],
    ['00010003', 'garbage'], // STUN length not a multiple of 4
  ] as const) {
    assert.equal(frameAll([Buffer.from(bytes, 'hex')]).error?.code, code, bytes);
  }
  // A STUN frame without the magic cookie is not TURN.
  const noCookie = Buffer.alloc(20);
  noCookie.writeUInt16BE(1, 0);
  assert.equal(frameAll([noCookie]).error?.code, 'not-stun');
  // Frames before the garbage are still delivered.
  const r = frameAll([Buffer.concat([stream, Buffer.from([0xff, 1, 2, 3])])]);
  assert.equal(r.error?.code, 'garbage');
  assert.deepEqual(r.frames, expected);
});

test('a length over the limit is refused before any of it is buffered', () => {
  const framer = new StreamFramer(() => undefined, { maxFrameLength: 1024 });
  const header = Buffer.from('4000fff0', 'hex');
  assert.equal(framer.push(header)?.code, 'too-long');
  assert.equal(framer.buffered, 0);
  assert.equal(frameAll([Buffer.from('00010800', 'hex')], 1024).error?.code, 'too-long');
});

test('reset: the incomplete frame of the old stream and its error are forgotten; the next push starts at a frame boundary', () => {
  const frames: Buffer[] = [];
  const f = new StreamFramer((frame) => frames.push(Buffer.from(frame)));
  const cd = Buffer.from([0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4]);
  f.push(cd.subarray(0, 6));
  assert.equal(f.buffered, 6);
  f.reset();
  assert.equal(f.buffered, 0);
  assert.equal(f.push(cd), undefined);
  assert.deepEqual(frames, [cd]);
  assert.ok(f.push(Buffer.from([0xff, 0xff, 0xff, 0xff])), 'not TURN: an error');
  f.reset();
  assert.equal(f.error, undefined);
  assert.equal(f.push(cd), undefined);
  assert.equal(frames.length, 2);
});

test('stop() in the handler: no frame after that one, and rest() is the stream after it, at every split', () => {
  const { stream, expected } = sampleStream(11);
  const at = 5; // stop on the sixth frame
  for (let cut = 0; cut <= stream.length; cut++) {
    const frames: Got[] = [];
    const framer = new StreamFramer((f, kind) => {
      frames.push({ kind, hex: f.toString('hex') });
      if (frames.length === at + 1) framer.stop();
    });
    const first = stream.subarray(0, cut);
    const second = stream.subarray(cut);
    let after: Buffer;
    assert.equal(framer.push(first), undefined);
    if (frames.length > at) after = Buffer.concat([framer.rest(), second]);
    else {
      assert.equal(framer.push(second), undefined);
      after = framer.rest();
    }
    assert.deepEqual(frames, expected.slice(0, at + 1), `cut at ${cut}`);
    // What follows is the rest of the stream, byte for byte: framing it again gives the other frames.
    assert.deepEqual(frameAll([after]).frames, expected.slice(at + 1), `cut at ${cut}`);
    assert.equal(framer.push(Buffer.from([0x40, 0x00, 0x00, 0x00])), undefined);
    assert.equal(frames.length, at + 1, 'nothing delivered after stop');
  }
});
