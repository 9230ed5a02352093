// The delay extension's attribute value: round trip, rejection of other versions and lengths,
// clock wrap-around; and a peer that does not know the attribute may ignore it (it is
// comprehension-optional), inside a Binding indication that decodes as any other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DELAY_FEEDBACK_ATTRIBUTE,
  MessageBuilder,
  MessageClass,
  Method,
  clockDiffMs,
  decodeDelayFeedback,
  decodeMessage,
  encodeDelayFeedback,
  getAttribute,
} from '../src/index.js';

test('round trip', () => {
  const f = { version: 1, clockMs: 0xfffffff0, receivedBytes: 2 ** 40 + 7, oneWayDelayMs: -1234 };
  assert.deepEqual(decodeDelayFeedback(encodeDelayFeedback(f)), f);
});

test('no one-way delay yet is its own value (-2^31), not 0; a real value never takes it', () => {
  const none = encodeDelayFeedback({ version: 1, clockMs: 1, receivedBytes: 1, oneWayDelayMs: undefined });
  assert.equal(none.readInt32BE(16), -(2 ** 31));
  assert.equal(decodeDelayFeedback(none)?.oneWayDelayMs, undefined);
  assert.equal(decodeDelayFeedback(encodeDelayFeedback({ version: 1, clockMs: 1, receivedBytes: 1, oneWayDelayMs: 0 }))?.oneWayDelayMs, 0);
  assert.equal(
    decodeDelayFeedback(encodeDelayFeedback({ version: 1, clockMs: 1, receivedBytes: 1, oneWayDelayMs: -(2 ** 40) }))?.oneWayDelayMs,
    -(2 ** 31) + 1,
  );
});

test('another version, a wrong length or an impossible byte count is not read', () => {
  const b = encodeDelayFeedback({ version: 1, clockMs: 1, receivedBytes: 1, oneWayDelayMs: 1 });
  assert.equal(decodeDelayFeedback(b.subarray(0, 19)), undefined);
  const v2 = Buffer.from(b);
  v2[0] = 2;
  assert.equal(decodeDelayFeedback(v2), undefined);
  const huge = Buffer.from(b);
  huge.writeBigUInt64BE(2n ** 63n, 8);
  assert.equal(decodeDelayFeedback(huge), undefined);
});

test('clock differences across the 2^32 wrap', () => {
  assert.equal(clockDiffMs(5, 0xfffffffb), 10);
  assert.equal(clockDiffMs(0xfffffffb, 5), -10);
});

test('comprehension-optional, carried in a Binding indication that decodes as any other', () => {
  assert.ok(DELAY_FEEDBACK_ATTRIBUTE >= 0x8000 && DELAY_FEEDBACK_ATTRIBUTE <= 0xffff);
  const value = encodeDelayFeedback({ version: 1, clockMs: 42, receivedBytes: 1000, oneWayDelayMs: 80 });
  const m = new MessageBuilder(Method.Binding, MessageClass.Indication).addRaw(DELAY_FEEDBACK_ATTRIBUTE, value).build();
  const d = decodeMessage(m);
  assert.ok(d.ok);
  const a = getAttribute(d.value, DELAY_FEEDBACK_ATTRIBUTE);
  assert.ok(a);
  assert.deepEqual(decodeDelayFeedback(Buffer.from(a.value)), { version: 1, clockMs: 42, receivedBytes: 1000, oneWayDelayMs: 80 });
});

test('the offer as a trailer: after MESSAGE-INTEGRITY and before a recomputed FINGERPRINT, integrity still good; taken out again, the message is as it was', async () => {
  const { AttributeType, hasDelayFeedbackOffer, longTermKey, verifyFingerprint, verifyIntegrity, withDelayFeedbackOffer, withoutDelayFeedback } =
    await import('../src/index.js');
  const key = longTermKey('alice', 'example.org', 'pw');
  const signed = new MessageBuilder(Method.Allocate, MessageClass.Request)
    .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
    .add(AttributeType.Username, { kind: 'text', text: 'alice' })
    .build({ integrityKey: key, fingerprint: true });
  assert.equal(hasDelayFeedbackOffer(signed), false);
  const offered = withDelayFeedbackOffer(signed);
  assert.equal(offered.length, signed.length + 24);
  assert.equal(hasDelayFeedbackOffer(offered), true);
  const d = decodeMessage(offered);
  assert.ok(d.ok);
  assert.equal(verifyIntegrity(d.value, key), 'ok', 'the signed part is untouched');
  assert.equal(verifyFingerprint(d.value), 'ok', 'FINGERPRINT recomputed, still last');
  assert.equal(getAttribute(d.value, DELAY_FEEDBACK_ATTRIBUTE), undefined, 'after integrity: a plain decoder ignores it (RFC 8489 §14.5)');
  assert.equal(d.value.ignoredAfterIntegrity, 1);
  assert.deepEqual(withoutDelayFeedback(offered), signed);
  // Without integrity or fingerprint: appended, and still found.
  const plain = new MessageBuilder(Method.Allocate, MessageClass.SuccessResponse).build();
  const echoed = withDelayFeedbackOffer(plain);
  assert.equal(hasDelayFeedbackOffer(echoed), true);
  assert.ok(decodeMessage(echoed).ok);
  assert.deepEqual(withoutDelayFeedback(echoed), plain);
  assert.equal(withoutDelayFeedback(plain), plain, 'nothing to take out: the same buffer');
});

test('a report as a Binding indication: 44 bytes, read back; a keepalive without it is no report', async () => {
  const { encodeDelayFeedbackIndication, readDelayFeedbackIndication, isBindingIndication } = await import('../src/index.js');
  const r = { clockMs: 123456, receivedBytes: 98765, oneWayDelayMs: -42 };
  const wire = encodeDelayFeedbackIndication(r);
  assert.equal(wire.length, 44);
  assert.equal(isBindingIndication(wire), true);
  assert.deepEqual(readDelayFeedbackIndication(wire), { version: 1, ...r });
  const d = decodeMessage(wire);
  assert.ok(d.ok, 'a well-formed STUN message');
  assert.equal(d.value.method, Method.Binding);
  assert.equal(d.value.messageClass, MessageClass.Indication);
  const keepalive = new MessageBuilder(Method.Binding, MessageClass.Indication).build();
  assert.equal(readDelayFeedbackIndication(keepalive), undefined);
});
