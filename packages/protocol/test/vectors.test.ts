// RFC 5769 test vectors and RFC 8489 Appendix B.1 (as corrected by erratum 6268): decode,
// verify, and re-encode byte for byte from the decoded parts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttributeType,
  MessageBuilder,
  MessageClass,
  Method,
  PasswordAlgorithm,
  decodeMessage,
  longTermKey,
  readAddressAttribute,
  readAttribute,
  readText,
  saslprep,
  userhash,
  verifyFingerprint,
  verifyIntegrity,
  verifyMessageIntegrity,
  type StunMessage,
} from '../src/index.js';
import { hex } from './hex.js';

const SHORT_TERM = Buffer.from('VOkJxbRl1RmTxUk/WvJxBt');

const REQUEST = hex(`00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
  00 24 00 04 6e 00 01 ff
  80 29 00 08 93 2f f9 b1 51 26 3b 36
  00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
  00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
  80 28 00 04 e5 7a 3b cf`);
const IPV4_RESPONSE = hex(`01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 08 00 01 a1 47 e1 12 a6 43
  00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
  80 28 00 04 c0 7d 4c 96`);
const IPV6_RESPONSE = hex(`01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
  00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
  80 28 00 04 c8 fb 0b 4c`);
const LONG_TERM = hex(`00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
  00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
  00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
  00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
  00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66`);
// RFC 8489 B.1 as corrected by erratum 6268 (the published vector has a wrong length, lacks
// PASSWORD-ALGORITHM and its HMAC cannot be reproduced).
const SHA256_REQUEST = hex(`00 01 00 90 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
  00 1e 00 20 4a 3c f3 8f ef 69 92 bd a9 52 c6 78 04 17 da 0f 24 81 94 15 56 9e 60 b2 05 c4 6e 41 40 7f 17 04
  00 15 00 29 6f 62 4d 61 74 4a 6f 73 32 41 41 41 43 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41 00 00 00
  00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
  00 1d 00 04 00 02 00 00
  00 1c 00 20 b5 c7 bf 00 5b 6c 52 a2 1c 51 c5 e8 92 f8 19 24 13 62 96 cb 92 7c 43 14 93 09 27 8c c6 51 8e 65`);

const LT_USER = '\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9';
const LT_PASSWORD_RAW = 'The\u00ADM\u00AAtr\u2168';

function decode(buf: Buffer): StunMessage {
  const r = decodeMessage(buf);
  assert.ok(r.ok, r.ok ? '' : r.error.reason);
  return r.value;
}

/** Rebuilds a message from its decoded attributes (keeping their padding bytes). */
function rebuild(msg: StunMessage, options: { key: Buffer; sha1: boolean; sha256: boolean; fingerprint: boolean }): Buffer {
  const b = new MessageBuilder(msg.method, msg.messageClass, msg.transactionId);
  for (const a of msg.attributes) {
    if (a.type === AttributeType.MessageIntegrity || a.type === AttributeType.MessageIntegritySha256 || a.type === AttributeType.Fingerprint) continue;
    const padLen = (4 - (a.value.length % 4)) % 4;
    const padStart = a.offset + 4 + a.value.length;
    b.addRaw(a.type, a.value, msg.raw.subarray(padStart, padStart + padLen));
  }
  return b.build({ integrityKey: options.key, sha1: options.sha1, sha256: options.sha256, fingerprint: options.fingerprint });
}

test('RFC 5769 2.1 sample request decodes, verifies and re-encodes byte for byte', () => {
  const msg = decode(REQUEST);
  assert.equal(msg.method, Method.Binding);
  assert.equal(msg.messageClass, MessageClass.Request);
  assert.equal(msg.classic, false);
  assert.equal(msg.transactionId.toString('hex'), 'b7e7a701bc34d686fa87dfae');
  assert.equal(readText(msg, AttributeType.Software), 'STUN test client');
  assert.equal(readText(msg, AttributeType.Username), 'evtj:h6vY');
  assert.deepEqual(msg.unknownRequired, []);
  assert.equal(verifyIntegrity(msg, SHORT_TERM), 'ok');
  assert.equal(verifyIntegrity(msg, Buffer.from('wrong')), 'mismatch');
  assert.equal(verifyFingerprint(msg), 'ok');
  assert.deepEqual(rebuild(msg, { key: SHORT_TERM, sha1: true, sha256: false, fingerprint: true }), REQUEST);
});

test('RFC 5769 2.2 IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853', () => {
  const msg = decode(IPV4_RESPONSE);
  assert.equal(msg.messageClass, MessageClass.SuccessResponse);
  assert.deepEqual(readAddressAttribute(msg, AttributeType.XorMappedAddress), { family: 'IPv4', address: '192.0.2.1', port: 32853 });
  assert.equal(readText(msg, AttributeType.Software), 'test vector');
  assert.equal(verifyIntegrity(msg, SHORT_TERM), 'ok');
  assert.equal(verifyFingerprint(msg), 'ok');
  assert.deepEqual(rebuild(msg, { key: SHORT_TERM, sha1: true, sha256: false, fingerprint: true }), IPV4_RESPONSE);
  // Encoding the typed address gives the vector's bytes too.
  const b = new MessageBuilder(Method.Binding, MessageClass.SuccessResponse, msg.transactionId);
  b.add(AttributeType.XorMappedAddress, { kind: 'address', address: { family: 'IPv4', address: '192.0.2.1', port: 32853 } });
  assert.equal(b.build().subarray(24).toString('hex'), '0001a147e112a643');
});

test('RFC 5769 2.3 IPv6 response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853', () => {
  const msg = decode(IPV6_RESPONSE);
  assert.deepEqual(readAddressAttribute(msg, AttributeType.XorMappedAddress), {
    family: 'IPv6',
    address: '2001:db8:1234:5678:11:2233:4455:6677',
    port: 32853,
  });
  assert.equal(verifyIntegrity(msg, SHORT_TERM), 'ok');
  assert.equal(verifyFingerprint(msg), 'ok');
  assert.deepEqual(rebuild(msg, { key: SHORT_TERM, sha1: true, sha256: false, fingerprint: true }), IPV6_RESPONSE);
});

test('RFC 5769 2.4 long-term authentication: MD5 key with SASLprep, byte for byte', () => {
  const msg = decode(LONG_TERM);
  assert.equal(readText(msg, AttributeType.Username), LT_USER);
  assert.equal(readText(msg, AttributeType.Nonce), 'f//499k954d6OL34oL9FSTvy64sA');
  assert.equal(readText(msg, AttributeType.Realm), 'example.org');
  assert.equal(saslprep(LT_PASSWORD_RAW), 'TheMatrIX');
  const key = longTermKey(LT_USER, 'example.org', saslprep(LT_PASSWORD_RAW));
  assert.equal(verifyMessageIntegrity(msg, key), true);
  assert.equal(verifyMessageIntegrity(msg, longTermKey(LT_USER, 'example.org', 'TheMatrix')), false);
  assert.equal(verifyFingerprint(msg), 'missing');
  assert.deepEqual(rebuild(msg, { key, sha1: true, sha256: false, fingerprint: false }), LONG_TERM);
});

test('RFC 8489 B.1 (erratum 6268): USERHASH, PASSWORD-ALGORITHM SHA-256 and MESSAGE-INTEGRITY-SHA256', () => {
  const msg = decode(SHA256_REQUEST);
  const uh = readAttribute(msg, AttributeType.Userhash);
  assert.ok(uh?.ok && uh.value.kind === 'bytes');
  assert.deepEqual(uh.value.bytes, userhash(LT_USER, 'example.org'));
  assert.equal(readText(msg, AttributeType.Nonce), 'obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA');
  const alg = readAttribute(msg, AttributeType.PasswordAlgorithm);
  assert.ok(alg?.ok && alg.value.kind === 'password-algorithm');
  assert.equal(alg.value.algorithm.algorithm, PasswordAlgorithm.SHA256);
  const key = longTermKey(LT_USER, 'example.org', 'TheMatrIX', PasswordAlgorithm.SHA256);
  assert.equal(verifyIntegrity(msg, key), 'ok');
  assert.equal(verifyIntegrity(msg, longTermKey(LT_USER, 'example.org', 'TheMatrIX')), 'mismatch');
  assert.deepEqual(rebuild(msg, { key, sha1: false, sha256: true, fingerprint: false }), SHA256_REQUEST);
});

test('a flipped bit anywhere before MESSAGE-INTEGRITY breaks it; one in FINGERPRINT breaks only that', () => {
  for (let i = 0; i < REQUEST.length - 32; i++) {
    if (i === 2 || i === 3) continue; // length field: changes framing, tested elsewhere
    const copy = Buffer.from(REQUEST);
    copy[i] = (copy[i] as number) ^ 0x01;
    const r = decodeMessage(copy);
    if (!r.ok) continue;
    assert.notEqual(verifyIntegrity(r.value, SHORT_TERM), 'ok', `bit flip at byte ${i} went unnoticed`);
  }
  const copy = Buffer.from(REQUEST);
  copy[copy.length - 1] = (copy[copy.length - 1] as number) ^ 1;
  const m = decode(copy);
  assert.equal(verifyIntegrity(m, SHORT_TERM), 'ok');
  assert.equal(verifyFingerprint(m), 'mismatch');
});
