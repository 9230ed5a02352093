// Local-mode Binding answers without sockets: the app's address as XOR-MAPPED-ADDRESS, FINGERPRINT
// only when asked, 420 for unknown mandatory attributes, damaged or foreign messages left alone.
// The npm `stun` package decodes the answers as an independent codec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import {
  AttributeType,
  MessageBuilder,
  MessageClass,
  Method,
  decodeMessage,
  longTermKey,
  readAddressAttribute,
  readAttribute,
  verifyFingerprint,
  type StunMessage,
} from '@onionturn/protocol';
import type { TransportAddress } from '@onionturn/protocol';
import { answerFlowlessBinding, appTransportAddress } from '../src/binding-answer.js';

const APP4: TransportAddress = { family: 'IPv4', address: '127.0.0.1', port: 51_234 };
const APP6: TransportAddress = { family: 'IPv6', address: '::1', port: 4242 };

function decode(b: Buffer): StunMessage {
  const r = decodeMessage(b);
  assert.ok(r.ok);
  return r.value;
}

function answered(datagram: Buffer, app: TransportAddress = APP4): StunMessage {
  const v = answerFlowlessBinding(datagram, app);
  assert.equal(v.kind, 'answer');
  return decode((v as { data: Buffer }).data);
}

test('appTransportAddress: IPv4, IPv6, IPv4-mapped IPv6 as the IPv4 app it is; nothing for unknowns', () => {
  assert.deepEqual(appTransportAddress('127.0.0.1', 5), { family: 'IPv4', address: '127.0.0.1', port: 5 });
  assert.deepEqual(appTransportAddress('::ffff:127.0.0.2', 6), { family: 'IPv4', address: '127.0.0.2', port: 6 });
  assert.deepEqual(appTransportAddress('::1', 7), { family: 'IPv6', address: '::1', port: 7 });
  assert.equal(appTransportAddress(undefined, 7), undefined);
  assert.equal(appTransportAddress('::1', undefined), undefined);
  assert.equal(appTransportAddress('localhost', 7), undefined);
});

test('a plain Binding: success, same transaction, XOR-MAPPED-ADDRESS = the app, no FINGERPRINT, SOFTWARE or integrity', () => {
  const req = new MessageBuilder(Method.Binding, MessageClass.Request).build();
  const resp = answered(req);
  assert.equal(resp.method, Method.Binding);
  assert.equal(resp.messageClass, MessageClass.SuccessResponse);
  assert.deepEqual(resp.transactionId, decode(req).transactionId);
  assert.deepEqual(readAddressAttribute(resp, AttributeType.XorMappedAddress), APP4);
  assert.deepEqual(
    resp.attributes.map((a) => a.type),
    [AttributeType.XorMappedAddress],
  );
  // IPv6 is XORed with the transaction id too.
  assert.deepEqual(readAddressAttribute(answered(req, APP6), AttributeType.XorMappedAddress), APP6);
});

test('FINGERPRINT when the request had one; a wrong FINGERPRINT is not STUN and is dropped', () => {
  const req = new MessageBuilder(Method.Binding, MessageClass.Request).build({ fingerprint: true });
  const resp = answered(req);
  assert.ok(resp.fingerprintOffset >= 0);
  assert.equal(verifyFingerprint(resp), 'ok');
  const damaged = Buffer.from(req);
  damaged.writeUInt8((damaged[damaged.length - 1] as number) ^ 0xff, damaged.length - 1);
  assert.deepEqual(answerFlowlessBinding(damaged, APP4), { kind: 'drop' });
});

test('unknown comprehension-required attributes: 420 with UNKNOWN-ATTRIBUTES', () => {
  const req = new MessageBuilder(Method.Binding, MessageClass.Request).addRaw(0x7f01, Buffer.from([1, 2, 3, 4])).build();
  const resp = answered(req);
  assert.equal(resp.messageClass, MessageClass.ErrorResponse);
  const code = readAttribute(resp, AttributeType.ErrorCode);
  assert.ok(code?.ok && code.value.kind === 'error-code' && code.value.code === 420);
  const unknown = readAttribute(resp, AttributeType.UnknownAttributes);
  assert.ok(unknown?.ok && unknown.value.kind === 'unknown-attributes');
  assert.deepEqual(unknown.value.types, [0x7f01]);
});

test('not for the flowless path: other methods, Bindings with integrity (a flow checks them), unknown app address', () => {
  const allocate = new MessageBuilder(Method.Allocate, MessageClass.Request)
    .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
    .build();
  assert.deepEqual(answerFlowlessBinding(allocate, APP4), { kind: 'other' });
  const signed = new MessageBuilder(Method.Binding, MessageClass.Request).build({ integrityKey: longTermKey('u', 'r', 'p') });
  assert.deepEqual(answerFlowlessBinding(signed, APP4), { kind: 'other' });
  assert.deepEqual(answerFlowlessBinding(new MessageBuilder(Method.Binding, MessageClass.Request).build(), undefined), { kind: 'drop' });
});

test('the npm stun package reads the answer: XOR-MAPPED-ADDRESS and FINGERPRINT', () => {
  const stun = createRequire(import.meta.url)('stun') as {
    decode: (b: Buffer) => { getXorAddress(): { address: string; port: number } | undefined; getAttribute(t: number): unknown; type: number };
    constants: { STUN_BINDING_RESPONSE: number; STUN_ATTR_FINGERPRINT: number };
  };
  const req = new MessageBuilder(Method.Binding, MessageClass.Request).build({ fingerprint: true });
  const v = answerFlowlessBinding(req, APP4);
  assert.equal(v.kind, 'answer');
  const msg = stun.decode((v as { data: Buffer }).data);
  assert.equal(msg.type, stun.constants.STUN_BINDING_RESPONSE);
  assert.deepEqual({ ...msg.getXorAddress() }, { address: APP4.address, port: APP4.port, family: 'IPv4' });
  assert.ok(msg.getAttribute(stun.constants.STUN_ATTR_FINGERPRINT));
});
