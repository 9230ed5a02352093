// App-side framing checks without sockets: what may open a Tor stream, where a datagram's
// TURN message ends, the padding views.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageBuilder, MessageClass, Method, encodeChannelData } from '@onionturn/protocol';
import { NOT_TURN, firstFrameVerdict, isStunRequest, messageEnd, paddingBytes } from '../src/app-datagram.js';

test('firstFrameVerdict: only a STUN request may open a Tor stream; HTTP is refused at its first byte', () => {
  const request = new MessageBuilder(Method.Allocate, MessageClass.Request).build();
  assert.deepEqual(firstFrameVerdict(request), { kind: 'request' });
  assert.deepEqual(firstFrameVerdict(request.subarray(0, 8)), { kind: 'request' });
  for (let n = 0; n < 8; n++) assert.deepEqual(firstFrameVerdict(request.subarray(0, n)), { kind: 'wait' }, `${n} bytes`);
  for (const method of ['GET ', 'POST', 'PUT ', 'HEAD', 'OPTIONS', 'DELETE', 'PATCH', 'CONNECT']) {
    const v = firstFrameVerdict(Buffer.from(`${method} / HTTP/1.1\r\n`).subarray(0, 1));
    assert.equal(v.kind, 'refuse', method);
    assert.match(v.kind === 'refuse' ? v.reason : '', /ChannelData \(first byte 0x[45][0-9a-f]\) before any STUN request/);
  }
  // A TLS ClientHello (https://127.0.0.1:PORT) looks like a request type; the magic cookie settles it.
  const clientHello = Buffer.from('1603010200010001fc0303', 'hex');
  assert.deepEqual(firstFrameVerdict(clientHello.subarray(0, 7)), { kind: 'wait' });
  assert.deepEqual(firstFrameVerdict(clientHello), { kind: 'refuse', reason: 'STUN message without the magic cookie on a TURN stream' });
  assert.deepEqual(firstFrameVerdict(Buffer.from([0xff])), { kind: 'refuse', reason: 'first byte 0xff is neither STUN nor ChannelData' });
  assert.equal(firstFrameVerdict(encodeChannelData(0x4001, Buffer.from('abcd'), true)).kind, 'refuse');
  assert.equal(firstFrameVerdict(new MessageBuilder(Method.Binding, MessageClass.SuccessResponse).build()).kind, 'refuse');
  assert.equal(firstFrameVerdict(new MessageBuilder(Method.Send, MessageClass.Indication).build()).kind, 'refuse');
  const noCookie = Buffer.from(request);
  noCookie.writeUInt32BE(0x2112a443, 4);
  assert.deepEqual(firstFrameVerdict(noCookie), { kind: 'refuse', reason: 'STUN message without the magic cookie on a TURN stream' });
});

test('messageEnd: STUN whole, ChannelData without padding, garbage refused', () => {
  const stun = new MessageBuilder(Method.Binding, MessageClass.Request).build();
  assert.equal(messageEnd(stun), stun.length);
  assert.equal(isStunRequest(stun), true);
  const unpadded = encodeChannelData(0x4001, Buffer.from('abcde'), false);
  assert.equal(messageEnd(unpadded), 9);
  assert.equal(messageEnd(encodeChannelData(0x4001, Buffer.from('abcde'), true)), 9);
  assert.equal(messageEnd(Buffer.concat([encodeChannelData(0x4001, Buffer.from('abcd'), true), Buffer.alloc(4)])), NOT_TURN);
  const coturnChannel = Buffer.from('7b8b0002abcd', 'hex'); // RFC 5766 range, as coturn binds
  assert.equal(messageEnd(coturnChannel), 6);
  assert.equal(messageEnd(Buffer.from('GET / HTTP/1.1\r\n')), NOT_TURN);
  const noCookie = Buffer.from(stun);
  noCookie.writeUInt32BE(0, 4);
  assert.equal(messageEnd(noCookie), NOT_TURN);
  assert.equal(messageEnd(stun.subarray(0, 10)), NOT_TURN);
  const response = new MessageBuilder(Method.Binding, MessageClass.SuccessResponse).build();
  assert.equal(isStunRequest(response), false);
});

test('paddingBytes: 0-3 zero bytes, the same views every time (no allocation on the relay path)', () => {
  for (let n = 0; n < 4; n++) {
    assert.deepEqual(paddingBytes(n), Buffer.alloc(n));
    assert.equal(paddingBytes(n), paddingBytes(n));
  }
});

test('isStunRequest: the request class only (classOf from protocol)', () => {
  for (const [cls, want] of [
    [MessageClass.Request, true],
    [MessageClass.Indication, false],
    [MessageClass.SuccessResponse, false],
    [MessageClass.ErrorResponse, false],
  ] as const) {
    for (const method of [Method.Binding, Method.Allocate, Method.Refresh, Method.ChannelBind])
      assert.equal(isStunRequest(new MessageBuilder(method, cls).build()), want, `${method}/${cls}`);
  }
  assert.equal(isStunRequest(Buffer.from([0x40, 0x01, 0, 0])), false, 'ChannelData');
});
