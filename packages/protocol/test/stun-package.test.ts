// Cross-check with an independent implementation, the npm `stun` package (devDependency only):
// it decodes what we encode and we decode what it encodes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import {
  AttributeType as A,
  MessageBuilder,
  MessageClass,
  Method,
  decodeMessage,
  readAttribute,
  readAddressAttribute,
  readText,
  readUint32,
  verifyFingerprint,
  verifyIntegrity,
} from '../src/index.js';

interface StunAttr {
  readonly value: unknown;
}
interface StunMsg {
  readonly type: number;
  readonly transactionId: Buffer;
  getAttribute(type: number): StunAttr | undefined;
  addAttribute(type: number, ...args: unknown[]): void;
  addMessageIntegrity(key: string): void;
  addFingerprint(): void;
  setTransactionId(id: Buffer): void;
  toBuffer(): Buffer;
}
interface StunModule {
  createMessage(type: number, tid?: Buffer): StunMsg;
  decode(buf: Buffer): StunMsg;
  validateMessageIntegrity(msg: StunMsg, key: string): boolean;
  validateFingerprint(msg: StunMsg): boolean;
  constants: Record<string, number>;
}
const stun = createRequire(import.meta.url)('stun') as StunModule;
const C = stun.constants;

const TYPES: [number, MessageClass, number][] = [
  [Method.Binding, MessageClass.Request, C['STUN_BINDING_REQUEST'] as number],
  [Method.Binding, MessageClass.SuccessResponse, C['STUN_BINDING_RESPONSE'] as number],
  [Method.Allocate, MessageClass.Request, C['STUN_ALLOCATE_REQUEST'] as number],
  [Method.Allocate, MessageClass.ErrorResponse, C['STUN_ALLOCATE_ERROR_RESPONSE'] as number],
  [Method.Refresh, MessageClass.Request, C['STUN_REFRESH_REQUEST'] as number],
  [Method.Send, MessageClass.Indication, C['STUN_SEND_INDICATION'] as number],
  [Method.Data, MessageClass.Indication, C['STUN_DATA_INDICATION'] as number],
  [Method.CreatePermission, MessageClass.Request, C['STUN_CREATE_PERMISSION_REQUEST'] as number],
  [Method.ChannelBind, MessageClass.SuccessResponse, C['STUN_CHANNEL_BIND_RESPONSE'] as number],
];

test('stun decodes what we encode, for a spread of message types', () => {
  for (const [method, cls, stunType] of TYPES) {
    const b = new MessageBuilder(method, cls);
    b.add(A.Username, { kind: 'text', text: '1893456000:7f3a' });
    b.add(A.XorPeerAddress, { kind: 'address', address: { family: 'IPv6', address: '2001:db8::1', port: 3478 } });
    b.add(A.XorRelayedAddress, { kind: 'address', address: { family: 'IPv4', address: '198.51.100.2', port: 50000 } });
    b.add(A.Lifetime, { kind: 'uint32', value: 600 });
    b.add(A.Data, { kind: 'bytes', bytes: Buffer.from('payload!') });
    b.add(A.Realm, { kind: 'text', text: 'onionturn' });
    const raw = b.build({ integrityKey: Buffer.from('secret-key'), fingerprint: true });
    const m = stun.decode(raw);
    assert.equal(m.type, stunType);
    assert.deepEqual(m.transactionId, raw.subarray(8, 20));
    assert.equal(String(m.getAttribute(A.Username)?.value), '1893456000:7f3a');
    assert.deepEqual(m.getAttribute(A.XorPeerAddress)?.value, { family: 'IPv6', address: '2001:db8::1', port: 3478 });
    assert.deepEqual(m.getAttribute(A.XorRelayedAddress)?.value, { family: 'IPv4', address: '198.51.100.2', port: 50000 });
    assert.equal(m.getAttribute(A.Lifetime)?.value, 600);
    assert.deepEqual(m.getAttribute(A.Data)?.value, Buffer.from('payload!'));
    assert.equal(stun.validateMessageIntegrity(m, 'secret-key'), true);
    assert.equal(stun.validateFingerprint(m), true);
  }
});

test('we decode what stun encodes, for a spread of message types', () => {
  for (const [method, cls, stunType] of TYPES) {
    const m = stun.createMessage(stunType);
    m.addAttribute(C['STUN_ATTR_USERNAME'] as number, 'alice');
    m.addAttribute(C['STUN_ATTR_XOR_PEER_ADDRESS'] as number, '203.0.113.9', 40000);
    m.addAttribute(C['STUN_ATTR_XOR_MAPPED_ADDRESS'] as number, '2001:db8:1234::9', 1);
    m.addAttribute(C['STUN_ATTR_LIFETIME'] as number, 3600);
    m.addAttribute(C['STUN_ATTR_ERROR_CODE'] as number, 437, 'Allocation Mismatch');
    m.addAttribute(C['STUN_ATTR_DATA'] as number, Buffer.from([1, 2, 3, 4, 5]));
    m.addMessageIntegrity('k3y');
    m.addFingerprint();
    const r = decodeMessage(m.toBuffer());
    assert.ok(r.ok);
    const msg = r.value;
    assert.equal(msg.method, method);
    assert.equal(msg.messageClass, cls);
    assert.equal(readText(msg, A.Username), 'alice');
    assert.deepEqual(readAddressAttribute(msg, A.XorPeerAddress), { family: 'IPv4', address: '203.0.113.9', port: 40000 });
    assert.deepEqual(readAddressAttribute(msg, A.XorMappedAddress), { family: 'IPv6', address: '2001:db8:1234::9', port: 1 });
    assert.equal(readUint32(msg, A.Lifetime), 3600);
    assert.deepEqual(readAttribute(msg, A.ErrorCode), { ok: true, value: { kind: 'error-code', code: 437, reason: 'Allocation Mismatch' } });
    const data = readAttribute(msg, A.Data);
    assert.ok(data?.ok && data.value.kind === 'bytes');
    assert.deepEqual([...data.value.bytes], [1, 2, 3, 4, 5]);
    assert.equal(verifyIntegrity(msg, Buffer.from('k3y')), 'ok');
    assert.equal(verifyFingerprint(msg), 'ok');
  }
});

test('ERROR-CODE bytes agree with stun (its decoder misreads the class digit; we compare bytes)', () => {
  const tid = Buffer.alloc(12, 3);
  const theirs = stun.createMessage(C['STUN_ALLOCATE_ERROR_RESPONSE'] as number, tid);
  theirs.addAttribute(C['STUN_ATTR_ERROR_CODE'] as number, 401, 'Unauthorized');
  const ours = new MessageBuilder(Method.Allocate, MessageClass.ErrorResponse, tid)
    .add(A.ErrorCode, { kind: 'error-code', code: 401, reason: 'Unauthorized' })
    .build();
  assert.deepEqual(ours, theirs.toBuffer());
});

test('REQUESTED-TRANSPORT and CHANNEL-NUMBER: stun writes 32-bit numbers; RFC 8656 puts them in the leading bytes', () => {
  // stun 2.1 encodes these two as plain uint32 values, so we compare bytes against the RFC
  // layout (§18.1: channel number then 16 RFFU bits; §18.6: protocol then 24 RFFU bits).
  const theirs = stun.createMessage(C['STUN_ALLOCATE_REQUEST'] as number);
  theirs.addAttribute(C['STUN_ATTR_REQUESTED_TRANSPORT'] as number, 17);
  theirs.addAttribute(C['STUN_ATTR_CHANNEL_NUMBER'] as number, 0x4123);
  assert.equal(theirs.toBuffer().subarray(20).toString('hex'), '0019000400000011' + '000c000400004123');
  const ours = new MessageBuilder(Method.Allocate, MessageClass.Request)
    .add(A.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
    .add(A.ChannelNumber, { kind: 'channel-number', channel: 0x4123 })
    .build();
  assert.equal(ours.subarray(20).toString('hex'), '0019000411000000' + '000c000441230000');
});
