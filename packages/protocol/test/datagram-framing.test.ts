import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DATAGRAM_FRAMING_VERSION,
  DatagramFrameDecoder,
  encodeDatagramFrame,
  encodeDatagramPreamble,
  negotiatedDatagramVersion,
  type DatagramDecoderOptions,
  type DatagramFramingError,
} from '../src/index.js';

function decodeAll(chunks: Buffer[], options?: DatagramDecoderOptions): { versions: number[]; datagrams: string[]; error: DatagramFramingError | undefined } {
  const versions: number[] = [];
  const datagrams: string[] = [];
  const d = new DatagramFrameDecoder({ onVersion: (v) => versions.push(v), onDatagram: (p) => datagrams.push(p.toString('hex')) }, options);
  let error: DatagramFramingError | undefined;
  for (const c of chunks) error ??= d.push(c);
  return { versions, datagrams, error };
}

function sample(): { stream: Buffer; expected: string[] } {
  const payloads = [Buffer.alloc(0), Buffer.from('a'), Buffer.alloc(300, 7), Buffer.from('dns?'), Buffer.alloc(2, 0)];
  const stream = Buffer.concat([encodeDatagramPreamble(), ...payloads.map((p) => encodeDatagramFrame(p) as Buffer)]);
  return { stream, expected: payloads.map((p) => p.toString('hex')) };
}

test('the wire format: version byte, then type 0 and a big-endian 16-bit length per datagram', () => {
  assert.equal(DATAGRAM_FRAMING_VERSION, 1);
  assert.equal(encodeDatagramPreamble().toString('hex'), '01');
  assert.equal(encodeDatagramFrame(Buffer.from('abc'))?.toString('hex'), '000003616263');
  assert.equal(encodeDatagramFrame(Buffer.alloc(0))?.toString('hex'), '000000');
  assert.equal(encodeDatagramFrame(Buffer.alloc(0x10000)), undefined, 'a datagram over 65535 bytes has no frame');
  assert.equal(encodeDatagramFrame(Buffer.alloc(0xffff))?.length, 0xffff + 3);
});

test('every two-way split of a stream gives the same datagrams, empty ones included', () => {
  const { stream, expected } = sample();
  for (let cut = 0; cut <= stream.length; cut++) {
    const r = decodeAll([stream.subarray(0, cut), stream.subarray(cut)]);
    assert.equal(r.error, undefined, `split at ${cut}`);
    assert.deepEqual(r.versions, [1]);
    assert.deepEqual(r.datagrams, expected, `split at ${cut}`);
  }
});

test('byte by byte gives the same datagrams and holds at most one frame', () => {
  const { stream, expected } = sample();
  const got: string[] = [];
  const d = new DatagramFrameDecoder({ onDatagram: (p) => got.push(p.toString('hex')) });
  let most = 0;
  for (let i = 0; i < stream.length; i++) {
    assert.equal(d.push(stream.subarray(i, i + 1)), undefined);
    most = Math.max(most, d.buffered);
  }
  assert.deepEqual(got, expected);
  assert.equal(d.buffered, 0);
  assert.ok(most <= 303, `held ${most} bytes`);
});

test('an unknown version is an error; the gateway side accepts newer offers', () => {
  assert.equal(decodeAll([Buffer.from([0, 0, 0, 0])]).error?.code, 'bad-version');
  assert.equal(decodeAll([Buffer.from([2, 0, 0, 0])]).error?.code, 'bad-version');
  const gateway = decodeAll([Buffer.from([7, 0, 0, 1, 0x55])], { minVersion: 1, maxVersion: 255 });
  assert.equal(gateway.error, undefined);
  assert.deepEqual(gateway.versions, [7]);
  assert.deepEqual(gateway.datagrams, ['55']);
  assert.equal(negotiatedDatagramVersion(7), 1);
  assert.equal(negotiatedDatagramVersion(1), 1);
});

test('a reserved frame type is an error, also when its header is split', () => {
  assert.equal(decodeAll([Buffer.from([1, 1, 0, 0])]).error?.code, 'bad-type');
  const split = decodeAll([Buffer.from([1, 0x47]), Buffer.from([0x45, 0x54])]);
  assert.equal(split.error?.code, 'bad-type');
  // "GET / HTTP/1.1": a stray HTTP client on the service port.
  assert.equal(decodeAll([Buffer.from('GET / HTTP/1.1\r\n')]).error?.code, 'bad-version');
});

test('a frame over the limit is refused before its body is buffered', () => {
  const d = new DatagramFrameDecoder({ onDatagram: () => assert.fail('no datagram') }, { maxBody: 100 });
  const e = d.push(Buffer.from([1, 0, 0, 101]));
  assert.equal(e?.code, 'too-long');
  assert.equal(d.buffered, 0);
  assert.match(e?.reason ?? '', /101 bytes is over the limit of 100/);
  assert.equal(decodeAll([Buffer.from([1]), encodeDatagramFrame(Buffer.alloc(100)) as Buffer], { maxBody: 100 }).error, undefined);
});

test('after an error nothing more is delivered and the same error comes back', () => {
  const got: Buffer[] = [];
  const d = new DatagramFrameDecoder({ onDatagram: (p) => got.push(p) });
  const e = d.push(Buffer.from([1, 9, 0, 0]));
  assert.equal(e?.code, 'bad-type');
  assert.equal(d.push(encodeDatagramFrame(Buffer.from('x')) as Buffer), e);
  assert.equal(d.error, e);
  assert.equal(got.length, 0);
});

test('a datagram split across chunks is its own copy: reusing the chunks does not change it', () => {
  const frame = Buffer.concat([encodeDatagramPreamble(), encodeDatagramFrame(Buffer.from('hello')) as Buffer]);
  const got: Buffer[] = [];
  const d = new DatagramFrameDecoder({ onDatagram: (p) => got.push(p) });
  const a = Buffer.from(frame.subarray(0, 6));
  const b = Buffer.from(frame.subarray(6));
  d.push(a);
  d.push(b);
  a.fill(0);
  b.fill(0);
  assert.equal(got[0]?.toString(), 'hello');
});
