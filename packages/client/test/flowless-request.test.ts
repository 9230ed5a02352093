// Local-credential mode, a request from a UDP source without a flow, without sockets: only an
// Allocate signed with the local credentials and a nonce given to that very source may make a
// flow; challenges, wrong passwords, Bindings and requests for allocations that cannot exist are
// answered from no state. The flow that follows accepts the same nonce (one authenticator per shim).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttributeType,
  ErrorCode,
  MessageBuilder,
  MessageClass,
  Method,
  decodeMessage,
  longTermKey,
  readAddressAttribute,
  readAttribute,
  readText,
  verifyIntegrity,
  type StunMessage,
  type TransportAddress,
} from '@onionturn/protocol';
import { AppAuthenticator } from '../src/app-auth.js';
import { CredentialResigner } from '../src/credential-resigner.js';
import { WarnEvery } from '../src/warn-once.js';
import { answerFlowless, type FlowlessVerdict } from '../src/flowless-request.js';

const LOCAL = { username: 'alice', password: 'wonderland', realm: 'onionturn.local' };
const LOCAL_KEY = longTermKey(LOCAL.username, LOCAL.realm, LOCAL.password);
const APP: TransportAddress = { family: 'IPv4', address: '127.0.0.1', port: 40_000 };
const T0 = 1_700_000_000_000;
const UDP = { kind: 'requested-transport', protocol: 17 } as const;

function decode(b: Buffer): StunMessage {
  const r = decodeMessage(b);
  assert.ok(r.ok);
  return r.value;
}

function errorCode(m: StunMessage): number | undefined {
  const r = readAttribute(m, AttributeType.ErrorCode);
  return r?.ok && r.value.kind === 'error-code' ? r.value.code : undefined;
}

function answer(v: FlowlessVerdict, reason: string): StunMessage {
  assert.equal(v.kind, 'answer', JSON.stringify(v));
  assert.equal((v as { reason: string }).reason, reason);
  return decode((v as { data: Buffer }).data);
}

function bare(method: number = Method.Allocate, fingerprint = false): Buffer {
  const b = new MessageBuilder(method, MessageClass.Request);
  if (method === Method.Allocate) b.add(AttributeType.RequestedTransport, UDP);
  return b.build({ fingerprint });
}

function signed(method: number, nonce: string, opts: { password?: string; sha256?: boolean; omitUser?: boolean } = {}): Buffer {
  const b = new MessageBuilder(method, MessageClass.Request);
  if (method === Method.Allocate) b.add(AttributeType.RequestedTransport, UDP);
  if (method === Method.CreatePermission) b.add(AttributeType.XorPeerAddress, { kind: 'address', address: { family: 'IPv4', address: '192.0.2.1', port: 9 } });
  if (!opts.omitUser) b.add(AttributeType.Username, { kind: 'text', text: LOCAL.username });
  b.add(AttributeType.Realm, { kind: 'text', text: LOCAL.realm }).add(AttributeType.Nonce, { kind: 'text', text: nonce });
  const key = longTermKey(LOCAL.username, LOCAL.realm, opts.password ?? LOCAL.password);
  return b.build({ integrityKey: key, sha1: opts.sha256 !== true, sha256: opts.sha256 === true });
}

/** The app's first step: an unauthenticated request, answered 401 with REALM and a nonce. */
function challenge(auth: AppAuthenticator, app: TransportAddress | undefined, now: number): string {
  const m = answer(answerFlowless(bare(), app, auth, now), 'challenge');
  assert.equal(errorCode(m), ErrorCode.Unauthorized);
  assert.equal(readText(m, AttributeType.Realm), LOCAL.realm);
  assert.equal(m.integrityOffset, -1, 'a 401 carries no MESSAGE-INTEGRITY');
  return readText(m, AttributeType.Nonce) as string;
}

test('unauthenticated Allocates from 1,000 sources: each a 401 with REALM and NONCE, none a flow', () => {
  const auth = new AppAuthenticator(LOCAL);
  const nonces = new Set<string>();
  for (let port = 20_000; port < 21_000; port++) nonces.add(challenge(auth, { ...APP, port }, T0));
  // Bound to the source: a thousand sources, a thousand nonces (from one second of the clock).
  assert.equal(nonces.size, 1000);
  for (const n of nonces) assert.match(n, /^[A-Za-z0-9_-]{22}$/, 'no RFC 8489 cookie: the shim offers no PASSWORD-ALGORITHMS');
  // FINGERPRINT in the request, FINGERPRINT in the answer.
  const fp = answer(answerFlowless(bare(Method.Allocate, true), APP, auth, T0), 'challenge');
  assert.ok(fp.fingerprintOffset >= 0);
});

test('a signed Allocate with the nonce given to that source opens a flow, whose resigner accepts it too', () => {
  const auth = new AppAuthenticator(LOCAL);
  const nonce = challenge(auth, APP, T0);
  for (const sha256 of [false, true]) {
    const req = signed(Method.Allocate, nonce, { sha256 });
    assert.deepEqual(answerFlowless(req, APP, auth, T0 + 1000), { kind: 'open' });
    // The shell makes the flow and hands it the same datagram: one authenticator, one nonce scheme.
    const flow = new CredentialResigner({ auth, app: APP });
    const out = flow.fromApp(req, T0 + 1000);
    assert.deepEqual(
      out.map((a) => a.kind),
      ['to-upstream'],
    );
  }
});

test('no flow for requests that do not authenticate: wrong password or user 401, foreign or old nonce 438, no USERNAME 400', () => {
  const auth = new AppAuthenticator(LOCAL, { nonceLifetimeMs: 60_000 });
  const nonce = challenge(auth, APP, T0);
  const wrong = answer(answerFlowless(signed(Method.Allocate, nonce, { password: 'nope' }), APP, auth, T0), 'wrong-credentials');
  assert.equal(errorCode(wrong), 401);
  assert.equal(readText(wrong, AttributeType.Realm), LOCAL.realm);
  assert.ok(readText(wrong, AttributeType.Nonce), 'a nonce to try again with');
  // Another source port of the same host: the nonce is not its own.
  const otherPort = answer(answerFlowless(signed(Method.Allocate, nonce), { ...APP, port: APP.port + 1 }, auth, T0), 'challenge');
  assert.equal(errorCode(otherPort), ErrorCode.StaleNonce);
  const fresh = readText(otherPort, AttributeType.Nonce) as string;
  assert.deepEqual(answerFlowless(signed(Method.Allocate, fresh), { ...APP, port: APP.port + 1 }, auth, T0), { kind: 'open' }, 'the 438 nonce works');
  // Expired, made up, or from another run of the shim (another secret).
  assert.equal(errorCode(answer(answerFlowless(signed(Method.Allocate, nonce), APP, auth, T0 + 61_000), 'challenge')), ErrorCode.StaleNonce);
  assert.equal(errorCode(answer(answerFlowless(signed(Method.Allocate, 'made-up'), APP, auth, T0), 'challenge')), ErrorCode.StaleNonce);
  const other = new AppAuthenticator(LOCAL);
  assert.equal(errorCode(answer(answerFlowless(signed(Method.Allocate, nonce), APP, other, T0), 'challenge')), ErrorCode.StaleNonce);
  assert.equal(errorCode(answer(answerFlowless(signed(Method.Allocate, nonce, { omitUser: true }), APP, auth, T0), 'challenge')), ErrorCode.BadRequest);
});

test('Bindings are answered without a flow: plain ones as before, signed ones checked and signed alike', () => {
  const auth = new AppAuthenticator(LOCAL);
  const plain = answer(answerFlowless(bare(Method.Binding), APP, auth, T0), 'binding');
  assert.deepEqual(readAddressAttribute(plain, AttributeType.XorMappedAddress), APP);
  assert.equal(plain.integrityOffset, -1);
  const nonce = challenge(auth, APP, T0);
  for (const sha256 of [false, true]) {
    const ok = answer(answerFlowless(signed(Method.Binding, nonce, { sha256 }), APP, auth, T0), 'binding');
    assert.equal(ok.messageClass, MessageClass.SuccessResponse);
    assert.equal(verifyIntegrity(ok, LOCAL_KEY), 'ok');
    assert.equal(ok.integritySha256Offset >= 0, sha256);
    assert.deepEqual(readAddressAttribute(ok, AttributeType.XorMappedAddress), APP);
  }
  assert.equal(errorCode(answer(answerFlowless(signed(Method.Binding, nonce, { password: 'nope' }), APP, auth, T0), 'wrong-credentials')), 401);
  // A source the shell could not tell gets no (wrong) mapped address.
  assert.deepEqual(answerFlowless(bare(Method.Binding), undefined, auth, T0), { kind: 'drop' });
});

test('authenticated requests for an allocation a source without a flow cannot have: 437, signed, no flow', () => {
  const auth = new AppAuthenticator(LOCAL);
  const nonce = challenge(auth, APP, T0);
  for (const method of [Method.Refresh, Method.CreatePermission, Method.ChannelBind]) {
    const m = answer(answerFlowless(signed(method, nonce), APP, auth, T0), 'no-allocation');
    assert.equal(m.method, method);
    assert.equal(errorCode(m), ErrorCode.AllocationMismatch);
    assert.equal(verifyIntegrity(m, LOCAL_KEY), 'ok');
  }
  // ...but unauthenticated, they are challenged like an Allocate.
  assert.equal(errorCode(answer(answerFlowless(bare(Method.Refresh), APP, auth, T0), 'challenge')), 401);
});

test('malformed STUN (an attribute past the end) is dropped without an answer', () => {
  const head = new MessageBuilder(Method.Allocate, MessageClass.Request).build().subarray(0, 20);
  const bad = Buffer.concat([head, Buffer.from([0x00, 0x06, 0x00, 0x40, 0, 0, 0, 0])]);
  bad.writeUInt16BE(8, 2);
  assert.deepEqual(answerFlowless(bad, APP, new AppAuthenticator(LOCAL), T0), { kind: 'drop' });
});

test('WarnEvery: the first line at once, then one per interval with how many were not logged', () => {
  const w = new WarnEvery(60_000);
  assert.equal(w.due(0), 0);
  for (let t = 1; t <= 500; t++) assert.equal(w.due(t), undefined);
  assert.equal(w.due(60_000), 500);
  assert.equal(w.due(60_001), undefined);
  assert.equal(w.due(120_000), 1);
});
