// classifyFrame: our own STUN messages are Control; relayed payloads (ChannelData, Send and Data
// indications) by RFC 7983's first byte: ICE checks, DTLS handshake records and RTCP are Vital;
// RTP carries its SSRC and timestamp; size decides Small or Large, also for payloads that only
// look like STUN or DTLS by their first byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttributeType,
  DropClass,
  LARGE_PAYLOAD_BYTES,
  MAGIC_COOKIE,
  MessageBuilder,
  MessageClass,
  Method,
  classifyFrame,
  dataIndicationLength,
  droppableOnArrival,
  encodeChannelData,
  newFrameClass,
  parseIp,
  writeDataIndication,
} from '../src/index.js';

function rtp(size: number, ssrc: number, ts: number, pt = 96, marker = false): Buffer {
  const b = Buffer.alloc(size);
  b[0] = 0x80;
  b[1] = pt | (marker ? 0x80 : 0);
  b.writeUInt32BE(ts, 4);
  b.writeUInt32BE(ssrc, 8);
  return b;
}
const rtcp = (): Buffer => Buffer.from([0x81, 201, 0, 7, ...Buffer.alloc(28)]);
const iceCheck = (): Buffer => new MessageBuilder(Method.Binding, MessageClass.Request).build();
function dtls(type: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  b[0] = type;
  b[1] = 0xfe;
  b[2] = 0xfd;
  return b;
}

/** The payload as ChannelData, as a Data indication (server to client) and as a Send indication (client to server). */
function framings(payload: Buffer): [string, Buffer][] {
  const di = Buffer.alloc(dataIndicationLength(4, payload.length));
  writeDataIndication(di, Buffer.alloc(12, 7), parseIp('192.0.2.1') as Buffer, 5000, payload);
  const send = new MessageBuilder(Method.Send, MessageClass.Indication)
    .add(AttributeType.XorPeerAddress, { kind: 'address', address: { family: 'IPv4', address: '192.0.2.1', port: 5000 } })
    .addRaw(AttributeType.Data, payload)
    .build();
  return [
    ['ChannelData', encodeChannelData(0x4000, payload, true)],
    ['Data indication', di],
    ['Send indication', send],
  ];
}

const out = newFrameClass();
function classOf(frame: Buffer): number {
  classifyFrame(frame, 0, frame.length, out);
  return out.cls;
}

test('our own STUN/TURN messages are Control', () => {
  for (const [m, c] of [
    [Method.Allocate, MessageClass.SuccessResponse],
    [Method.Refresh, MessageClass.Request],
    [Method.ChannelBind, MessageClass.ErrorResponse],
    [Method.Binding, MessageClass.Request],
  ] as const) {
    assert.equal(classOf(new MessageBuilder(m, c).build()), DropClass.Control);
  }
  // A Data indication without DATA carries nothing to drop.
  assert.equal(classOf(new MessageBuilder(Method.Data, MessageClass.Indication).build()), DropClass.Control);
});

for (const [name, payload, cls] of [
  ['an ICE check', iceCheck(), DropClass.Vital],
  ['RTCP', rtcp(), DropClass.Vital],
  ['a DTLS handshake record', dtls(22, 200), DropClass.Vital],
  ['a DTLS alert', dtls(21, 40), DropClass.Vital],
  ['small DTLS application data (a data-channel SACK or short message: SCTP backs off on its loss)', dtls(23, 300), DropClass.Vital],
  ['big DTLS application data', dtls(23, 1100), DropClass.Large],
  ['a DTLS 1.3 encrypted handshake record (unified header, epoch 2: the certificate flight)', Buffer.alloc(1100, 0x2e), DropClass.Vital],
  ['a DTLS 1.3 record of epoch 3 (application data)', Buffer.alloc(1100, 0x2f), DropClass.Large],
  ['a small DTLS 1.3 record of epoch 3', Buffer.alloc(80, 0x2f), DropClass.Vital],
  ['an audio-sized RTP packet', rtp(160, 1, 2), DropClass.Small],
  ['a video-sized RTP packet', rtp(1100, 1, 2), DropClass.Large],
  ['other data of 1000 bytes (turnutils_uclient)', Buffer.alloc(1000, 0x55), DropClass.Large],
  ['other data starting like STUN but without the cookie', Buffer.alloc(1000, 0x01), DropClass.Large],
  ['other data starting like DTLS without its version', Buffer.alloc(1000, 0x16), DropClass.Large],
  ['a short other payload', Buffer.from([0x42]), DropClass.Small],
  ['an empty payload', Buffer.alloc(0), DropClass.Small],
] as const) {
  for (const [framing, frame] of framings(payload)) {
    test(`${name} relayed in a ${framing} is ${cls}`, () => {
      assert.equal(classOf(frame), cls);
    });
  }
}

test('RTP packets carry SSRC and timestamp; the size threshold is LARGE_PAYLOAD_BYTES', () => {
  for (const [, frame] of framings(rtp(LARGE_PAYLOAD_BYTES, 0xdeadbeef, 0x01020304))) {
    classifyFrame(frame, 0, frame.length, out);
    assert.equal(out.cls, DropClass.Small);
    assert.equal(out.rtp, true);
    assert.equal(out.ssrc, 0xdeadbeef);
    assert.equal(out.timestamp, 0x01020304);
  }
  classifyFrame(encodeChannelData(0x4000, rtp(LARGE_PAYLOAD_BYTES + 1, 1, 1), false), 0, LARGE_PAYLOAD_BYTES + 5, out);
  assert.equal(out.cls, DropClass.Large);
  classifyFrame(encodeChannelData(0x4000, rtcp(), false), 0, 36, out);
  assert.equal(out.rtp, false);
});

test('a frame inside a bigger buffer, and truncated or hostile lengths, are read within bounds', () => {
  const payload = rtp(1100, 9, 9);
  const frame = encodeChannelData(0x4000, payload, true);
  const big = Buffer.concat([Buffer.alloc(33, 0xff), frame, Buffer.alloc(10, 0x80)]);
  classifyFrame(big, 33, frame.length, out);
  assert.equal(out.cls, DropClass.Large);
  assert.equal(out.ssrc, 9);
  // A ChannelData length past the frame: only the frame's bytes count.
  const lying = Buffer.from(frame.subarray(0, 20));
  classifyFrame(lying, 0, lying.length, out);
  assert.equal(out.cls, DropClass.Small);
  // A STUN header claiming more than there is, and attributes running off the end.
  const di = Buffer.alloc(28);
  di.writeUInt16BE(0x0117, 0);
  di.writeUInt16BE(0xfff0, 2);
  di.writeUInt32BE(MAGIC_COOKIE, 4);
  di.writeUInt16BE(AttributeType.XorPeerAddress, 20);
  di.writeUInt16BE(0xfff0, 22);
  classifyFrame(di, 0, di.length, out);
  assert.equal(out.cls, DropClass.Control);
  classifyFrame(Buffer.alloc(3), 0, 3, out);
  assert.equal(out.cls, DropClass.Control);
});

test("DTLS application data (1.2, or 1.3's epoch 3 and up) is reliable: the data channel's SCTP resends what is dropped; nothing else is", () => {
  const cases: [string, Buffer, boolean][] = [
    ['DTLS 1.2 application data', dtls(23, 300), true],
    ['DTLS 1.3 epoch 3', Buffer.alloc(300, 0x2f), true],
    ['DTLS 1.3 epoch 4', Buffer.alloc(300, 0x2c), true],
    ['a DTLS handshake record', dtls(22, 200), false],
    ['an RTP packet', rtp(1100, 1, 2), false],
    ['other data', Buffer.alloc(1000, 0x55), false],
    ['data starting with 23 without the DTLS version', Buffer.alloc(1000, 23), false],
  ];
  for (const [name, payload, reliable] of cases) {
    for (const [framing, frame] of framings(payload)) {
      classifyFrame(frame, 0, frame.length, out);
      assert.equal(out.reliable, reliable, `${name} in a ${framing}`);
    }
  }
});

test("dropped on arrival when late: small media and data only; never video (it crossed the narrow path already, a frame's small last packet neither), the data channel, ICE, DTLS handshake or RTCP", () => {
  const cases: [string, Buffer, boolean][] = [
    ['an audio-sized RTP packet', rtp(160, 1, 2, 111), true],
    ["a video frame's short last packet, or a small frame's only one (marker bit)", rtp(300, 5, 6, 96, true), false],
    ['small other data', Buffer.alloc(200, 0x55), true],
    ['a video-sized RTP packet', rtp(1100, 3, 4), false],
    ['large other data', Buffer.alloc(1000, 0x55), false],
    ['DTLS 1.2 application data, large', dtls(23, 1000), false],
    ['DTLS 1.2 application data, small', dtls(23, 100), false],
    ['an ICE check', iceCheck(), false],
    ['a DTLS handshake record', dtls(22, 200), false],
    ['RTCP', rtcp(), false],
  ];
  for (const [name, payload, droppable] of cases) {
    for (const [framing, frame] of framings(payload)) {
      classifyFrame(frame, 0, frame.length, out);
      assert.equal(droppableOnArrival(out), droppable, `${name} in a ${framing}`);
    }
  }
  const own = new MessageBuilder(Method.Refresh, MessageClass.SuccessResponse).build();
  classifyFrame(own, 0, own.length, out);
  assert.equal(droppableOnArrival(out), false, 'our own STUN message');
});
