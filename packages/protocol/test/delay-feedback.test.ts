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
