// The local-credential state machine without sockets: the test plays the app and the upstream
// TURN server and checks every message crossing the shim.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttributeType,
  ErrorCode,
  MessageBuilder,
  MessageClass,
  Method,
  decodeMessage,
  errorCodeValue,
  longTermKey,
  readAddressAttribute,
  readAttribute,
  readText,
  readUint32,
  verifyIntegrity,
  type StunMessage,
} from '@onionturn/protocol';
import { AppAuthenticator } from '../src/app-auth.js';
import { CredentialResigner, type ResignAction, type ResignerOptions } from '../src/credential-resigner.js';
import { WarnOnce } from '../src/warn-once.js';

const LOCAL = { username: 'app', password: 'app-pass', realm: 'onionturn.local' };
const LOCAL_KEY = longTermKey(LOCAL.username, LOCAL.realm, LOCAL.password);
const UP = { username: '1900000000:abc', password: 'up-pass', expiresAt: 1_900_000_000_000 };
const UP_REALM = 'upstream.realm';
const UP_KEY = longTermKey(UP.username, UP_REALM, UP.password);

/** A resigner with an authenticator of its own (the shim shares one among its flows). */
function resigner(opts: Omit<ResignerOptions, 'auth'> & { nonceLifetimeMs?: number } = {}): CredentialResigner {
  const { nonceLifetimeMs, ...rest } = opts;
  return new CredentialResigner({ ...rest, auth: new AppAuthenticator(LOCAL, nonceLifetimeMs !== undefined ? { nonceLifetimeMs } : {}) });
}

function decode(b: Buffer): StunMessage {
  const r = decodeMessage(b);
  assert.ok(r.ok);
  return r.value;
}

function one(actions: ResignAction[], kind: 'to-app' | 'to-upstream'): StunMessage {
  assert.equal(actions.length, 1, JSON.stringify(actions.map((a) => a.kind)));
  const a = actions[0];
  assert.ok(a && a.kind === kind, `expected ${kind}, got ${a?.kind}`);
  return decode(a.data);
}

function errorCode(m: StunMessage): number | undefined {
  const r = readAttribute(m, AttributeType.ErrorCode);
  return r?.ok && r.value.kind === 'error-code' ? r.value.code : undefined;
}

function appRequest(method: number, nonce: string, opts: { password?: string; sha256?: boolean; username?: string } = {}): Buffer {
  const b = new MessageBuilder(method, MessageClass.Request);
  if (method === Method.Allocate) b.add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 });
  if (method === Method.CreatePermission)
    b.add(AttributeType.XorPeerAddress, { kind: 'address', address: { family: 'IPv6', address: '2001:db8::7', port: 9 } });
  b.add(AttributeType.Username, { kind: 'text', text: opts.username ?? LOCAL.username })
    .add(AttributeType.Realm, { kind: 'text', text: LOCAL.realm })
    .add(AttributeType.Nonce, { kind: 'text', text: nonce });
  const key = longTermKey(opts.username ?? LOCAL.username, LOCAL.realm, opts.password ?? LOCAL.password);
  return b.build({ integrityKey: key, sha1: opts.sha256 !== true, sha256: opts.sha256 === true, fingerprint: true });
}

function upstreamChallenge(req: StunMessage, code: number, nonce: string): Buffer {
  return new MessageBuilder(req.method, MessageClass.ErrorResponse, req.transactionId)
    .add(AttributeType.ErrorCode, errorCodeValue(code))
    .add(AttributeType.Realm, { kind: 'text', text: UP_REALM })
    .add(AttributeType.Nonce, { kind: 'text', text: nonce })
    .build();
}

/** Goes through the local 401 and returns the nonce the shim gave the app. */
function localNonce(r: CredentialResigner, now: number): string {
  const bare = new MessageBuilder(Method.Allocate, MessageClass.Request)
    .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
    .build();
  const challenge = one(r.fromApp(bare, now), 'to-app');
  assert.equal(errorCode(challenge), 401);
  assert.equal(challenge.integrityOffset, -1, 'a 401 carries no MESSAGE-INTEGRITY');
  assert.equal(readText(challenge, AttributeType.Realm), LOCAL.realm);
  return readText(challenge, AttributeType.Nonce) as string;
}

test('allocate: local 401, upstream challenge answered by the shim, response re-signed under the app transaction id', () => {
  const r = resigner();
  const nonce = localNonce(r, 0);
  const req = appRequest(Method.Allocate, nonce);
  const appTxid = decode(req).transactionId;

  // Realm unknown upstream: the first copy goes unsigned, without the app's auth attributes.
  const first = one(r.fromApp(req, 10), 'to-upstream');
  assert.deepEqual(first.transactionId, appTxid);
  assert.equal(readText(first, AttributeType.Username), undefined);
  assert.equal(first.integrityOffset, -1);
  assert.equal(first.fingerprintOffset >= 0, true);
  assert.ok(readAttribute(first, AttributeType.RequestedTransport));

  // The upstream 401 arrives before the credential: held, nothing reaches the app.
  assert.deepEqual(r.fromUpstream(upstreamChallenge(first, 401, 'up-nonce-1'), 20), []);
  const retry = one(r.setUpstreamCredential(UP, 30), 'to-upstream');
  assert.notDeepEqual(retry.transactionId, appTxid, 'a retry is a new transaction');
  assert.equal(readText(retry, AttributeType.Username), UP.username);
  assert.equal(readText(retry, AttributeType.Realm), UP_REALM);
  assert.equal(readText(retry, AttributeType.Nonce), 'up-nonce-1');
  assert.equal(verifyIntegrity(retry, UP_KEY), 'ok');

  const relayed = { family: 'IPv6' as const, address: '2001:db8::1', port: 50000 };
  const ok = new MessageBuilder(Method.Allocate, MessageClass.SuccessResponse, retry.transactionId)
    .add(AttributeType.XorRelayedAddress, { kind: 'address', address: relayed })
    .add(AttributeType.Lifetime, { kind: 'uint32', value: 600 })
    .build({ integrityKey: UP_KEY, fingerprint: true });
  const resp = one(r.fromUpstream(ok, 40), 'to-app');
  assert.deepEqual(resp.transactionId, appTxid);
  assert.equal(resp.messageClass, MessageClass.SuccessResponse);
  assert.equal(verifyIntegrity(resp, LOCAL_KEY), 'ok');
  assert.equal(verifyIntegrity(resp, UP_KEY), 'mismatch');
  // XOR addresses are re-keyed to the app's transaction id (IPv6 XORs with it).
  assert.deepEqual(readAddressAttribute(resp, AttributeType.XorRelayedAddress), relayed);
  assert.equal(readUint32(resp, AttributeType.Lifetime), 600);
  assert.equal(r.pendingCount, 0);

  // Later requests are signed at once; a 438 is answered with the new nonce.
  const perm = appRequest(Method.CreatePermission, nonce);
  const signed = one(r.fromApp(perm, 50), 'to-upstream');
  assert.equal(verifyIntegrity(signed, UP_KEY), 'ok');
  assert.deepEqual(readAddressAttribute(signed, AttributeType.XorPeerAddress), { family: 'IPv6', address: '2001:db8::7', port: 9 });
  const again = one(r.fromUpstream(upstreamChallenge(signed, 438, 'up-nonce-2'), 60), 'to-upstream');
  assert.equal(readText(again, AttributeType.Nonce), 'up-nonce-2');
  const permOk = new MessageBuilder(Method.CreatePermission, MessageClass.SuccessResponse, again.transactionId).build({ integrityKey: UP_KEY });
  const permResp = one(r.fromUpstream(permOk, 70), 'to-app');
  assert.deepEqual(permResp.transactionId, decode(perm).transactionId);
  assert.equal(verifyIntegrity(permResp, LOCAL_KEY), 'ok');
});

test('local checks: wrong password or user 401, old nonce 438, missing USERNAME 400; nothing goes upstream', () => {
  const r = resigner({ nonceLifetimeMs: 1000 });
  const nonce = localNonce(r, 0);
  const first = r.fromApp(appRequest(Method.Allocate, nonce, { password: 'nope' }), 1);
  assert.deepEqual(
    first.map((a) => a.kind),
    ['to-app', 'warn'],
    'told once per flow',
  );
  const wrong = one(r.fromApp(appRequest(Method.Allocate, nonce, { password: 'nope' }), 1), 'to-app');
  assert.equal(errorCode(wrong), 401);
  assert.equal(readText(wrong, AttributeType.Realm), LOCAL.realm);
  assert.match(readText(wrong, AttributeType.Nonce) ?? '', /^[A-Za-z0-9_-]{22}$/, 'a fresh nonce, no RFC 8489 cookie (no PASSWORD-ALGORITHMS offered)');
  assert.equal(errorCode(one(r.fromApp(appRequest(Method.Allocate, nonce, { username: 'eve' }), 2), 'to-app')), 401);
  const stale = one(r.fromApp(appRequest(Method.Allocate, 'made-up'), 3), 'to-app');
  assert.equal(errorCode(stale), ErrorCode.StaleNonce);
  // After the nonce lifetime the old nonce is stale too.
  const later = one(r.fromApp(appRequest(Method.Allocate, nonce), 40_000), 'to-app');
  assert.equal(errorCode(later), 438);
  assert.notEqual(readText(later, AttributeType.Nonce), nonce);
  const noUser = new MessageBuilder(Method.Allocate, MessageClass.Request)
    .add(AttributeType.Nonce, { kind: 'text', text: nonce })
    .build({ integrityKey: LOCAL_KEY });
  assert.equal(errorCode(one(r.fromApp(noUser, 40_001), 'to-app')), 400);
  assert.equal(r.pendingCount, 0);
});

test('MESSAGE-INTEGRITY-SHA256 from the app is checked and answered in kind', () => {
  const r = resigner();
  r.setUpstreamCredential(UP, 0);
  const nonce = localNonce(r, 0);
  const up = one(r.fromApp(appRequest(Method.Refresh, nonce, { sha256: true }), 1), 'to-upstream');
  const signed = one(r.fromUpstream(upstreamChallenge(up, 401, 'n'), 2), 'to-upstream');
  const resp = one(
    r.fromUpstream(new MessageBuilder(Method.Refresh, MessageClass.SuccessResponse, signed.transactionId).build({ integrityKey: UP_KEY }), 3),
    'to-app',
  );
  assert.equal(resp.integritySha256Offset >= 0, true);
  assert.equal(resp.integrityOffset, -1);
  assert.equal(verifyIntegrity(resp, LOCAL_KEY), 'ok');
});

test('upstream faults: a tampered response is dropped, a refused credential ends in 500 with a reason', () => {
  const r = resigner();
  r.setUpstreamCredential(UP, 0);
  const nonce = localNonce(r, 0);
  const up = one(r.fromApp(appRequest(Method.Allocate, nonce), 1), 'to-upstream');
  const signed = one(r.fromUpstream(upstreamChallenge(up, 401, 'n1'), 2), 'to-upstream');
  const forged = new MessageBuilder(Method.Allocate, MessageClass.SuccessResponse, signed.transactionId).build({ integrityKey: Buffer.alloc(16) });
  const dropped = r.fromUpstream(forged, 3);
  assert.deepEqual(
    dropped.map((a) => a.kind),
    ['warn'],
  );
  assert.match((dropped[0] as { reason: string }).reason, /integrity check \(mismatch\); dropped/);
  assert.equal((dropped[0] as { code: string }).code, 'upstream-integrity');

  const req2 = appRequest(Method.Allocate, nonce);
  const s2 = one(r.fromApp(req2, 4), 'to-upstream');
  // Signed with the realm and nonce the server just gave, and still 401: the credential is bad.
  const refused = r.fromUpstream(upstreamChallenge(s2, 401, 'n1'), 5);
  assert.deepEqual(
    refused.map((a) => a.kind),
    ['warn', 'to-app'],
  );
  assert.match((refused[0] as { reason: string }).reason, /upstream refused the shim's credentials/);
  assert.equal((refused[0] as { code: string }).code, 'upstream-refused');
  const resp = decode((refused[1] as { data: Buffer }).data);
  assert.equal(errorCode(resp), 500);
  assert.deepEqual(resp.transactionId, decode(req2).transactionId);
  assert.equal(verifyIntegrity(resp, LOCAL_KEY), 'ok');
  assert.equal(r.pendingCount, 0);
});

test('pass-through parts: indications unchanged, retransmissions absorbed, unknown responses dropped', () => {
  const r = resigner();
  // A Binding answer upstream sends unasked (none is ever sent there) is dropped like any other.
  const bindingOk = new MessageBuilder(Method.Binding, MessageClass.SuccessResponse).build();
  assert.deepEqual(r.fromUpstream(bindingOk, 1), []);
  const send = new MessageBuilder(Method.Send, MessageClass.Indication).add(AttributeType.Data, { kind: 'bytes', bytes: Buffer.from('x') }).build();
  // Before the app has authenticated, an indication would open the Tor stream: dropped.
  assert.deepEqual(
    r.fromApp(send, 2).map((a) => a.kind === 'warn' && a.code),
    ['app-early-indication'],
  );
  const data = new MessageBuilder(Method.Data, MessageClass.Indication).build();
  assert.deepEqual(r.fromUpstream(data, 3), [{ kind: 'to-app', data }]);
  const nonce = localNonce(r, 4);
  const req = appRequest(Method.Allocate, nonce);
  assert.equal(r.fromApp(req, 5).length, 1);
  assert.deepEqual(r.fromApp(send, 5), [{ kind: 'to-upstream', data: send }], 'after it has, unchanged');
  assert.deepEqual(r.fromApp(req, 6), [], 'a UDP retransmission of a request in flight');
  const stray = new MessageBuilder(Method.Allocate, MessageClass.SuccessResponse).build();
  assert.deepEqual(r.fromUpstream(stray, 7), []);
  // Unanswered transactions are forgotten after the timeout.
  r.tick(120_000);
  assert.equal(r.pendingCount, 0);
  assert.equal(r.fromApp(req, 120_001).length, 1);
});

test('Binding is answered locally with the app address, never sent upstream; with integrity it is checked and signed', () => {
  const app = { family: 'IPv4' as const, address: '127.0.0.1', port: 40_000 };
  const r = resigner({ app });
  // Unauthenticated, as ICE and STUN clients send it: no 401, no credential needed.
  const plain = new MessageBuilder(Method.Binding, MessageClass.Request).build();
  const answer = one(r.fromApp(plain, 0), 'to-app');
  assert.equal(answer.messageClass, MessageClass.SuccessResponse);
  assert.deepEqual(answer.transactionId, decode(plain).transactionId);
  assert.deepEqual(readAddressAttribute(answer, AttributeType.XorMappedAddress), app);
  assert.equal(answer.fingerprintOffset, -1, 'no FINGERPRINT when the request had none');
  assert.equal(answer.integrityOffset, -1);
  assert.equal(readAttribute(answer, AttributeType.Software), undefined);
  const withFp = one(r.fromApp(new MessageBuilder(Method.Binding, MessageClass.Request).build({ fingerprint: true }), 1), 'to-app');
  assert.ok(withFp.fingerprintOffset >= 0);
  assert.equal(r.pendingCount, 0);
  assert.equal(r.hasCredential, false);

  // With MESSAGE-INTEGRITY: the long-term mechanism as for any request, the answer signed alike.
  const nonce = localNonce(r, 2);
  for (const sha256 of [false, true]) {
    const signed = one(r.fromApp(appRequest(Method.Binding, nonce, { sha256 }), 3), 'to-app');
    assert.equal(signed.messageClass, MessageClass.SuccessResponse);
    assert.equal(verifyIntegrity(signed, LOCAL_KEY), 'ok');
    assert.equal(signed.integritySha256Offset >= 0, sha256);
    assert.ok(signed.fingerprintOffset >= 0, 'the request had FINGERPRINT');
    assert.deepEqual(readAddressAttribute(signed, AttributeType.XorMappedAddress), app);
  }
  const wrong = r.fromApp(appRequest(Method.Binding, nonce, { password: 'nope' }), 4);
  assert.deepEqual(
    wrong.map((a) => a.kind),
    ['to-app', 'warn'],
  );
  assert.equal(errorCode(decode((wrong[0] as { data: Buffer }).data)), 401);
  assert.equal(errorCode(one(r.fromApp(appRequest(Method.Binding, 'old-nonce'), 5), 'to-app')), 438);
  assert.equal(r.pendingCount, 0);

  // An app whose address the shell could not tell gets no (wrong) answer.
  assert.deepEqual(resigner().fromApp(plain, 0), []);
});

test('warnings a peer can cause per message: one code per kind, so the shell logs each kind once per flow', () => {
  const r = resigner();
  // STUN-framed junk (cookie right, attribute running past the end): malformed, every time.
  const junk = Buffer.from(new MessageBuilder(Method.Allocate, MessageClass.Request).build());
  const bad = Buffer.concat([junk.subarray(0, 20), Buffer.from([0x00, 0x06, 0x00, 0x40, 0, 0, 0, 0])]);
  bad.writeUInt16BE(8, 2);
  const fromApp = Array.from({ length: 1000 }, (_, i) => r.fromApp(bad, i)).flat();
  const fromUp = Array.from({ length: 1000 }, (_, i) => r.fromUpstream(bad, i)).flat();
  assert.equal(fromApp.length, 1000);
  assert.deepEqual([...new Set(fromApp.map((a) => (a.kind === 'warn' ? a.code : a.kind)))], ['app-malformed']);
  assert.deepEqual([...new Set(fromUp.map((a) => (a.kind === 'warn' ? a.code : a.kind)))], ['upstream-malformed']);
  // What the shell does with them.
  const once = new WarnOnce();
  const logged = [...fromApp, ...fromUp].filter((a) => a.kind === 'warn' && once.first(a.code));
  assert.equal(logged.length, 2);
  assert.equal(once.suppressed, 1998);
});

test('the delay extension: offered in every Allocate sent upstream and in the take-over Refresh; an echo negotiates it (and never reaches the app), its absence declines it; reports only on a negotiated stream', async () => {
  const { encodeDelayFeedbackIndication, hasDelayFeedbackOffer, withDelayFeedbackOffer } = await import('@onionturn/protocol');
  const r = resigner({ offerDelayFeedback: true });
  const nonce = localNonce(r, 0);
  const first = r.fromApp(appRequest(Method.Allocate, nonce), 10)[0];
  assert.ok(first?.kind === 'to-upstream');
  assert.equal(hasDelayFeedbackOffer(first.data), true, 'the unsigned first Allocate offers it');
  r.fromUpstream(upstreamChallenge(decode(first.data), 401, 'n1'), 20);
  const retry = r.setUpstreamCredential(UP, 30)[0];
  assert.ok(retry?.kind === 'to-upstream');
  assert.equal(hasDelayFeedbackOffer(retry.data), true, 'the signed retry too');
  assert.equal(verifyIntegrity(decode(retry.data), UP_KEY), 'ok', 'after the integrity: still good');
  // A report before negotiation: dropped, never the app's.
  const report = encodeDelayFeedbackIndication({ clockMs: 5, receivedBytes: 100, oneWayDelayMs: 7 });
  assert.deepEqual(r.fromUpstream(report, 35), []);
  const ok = new MessageBuilder(Method.Allocate, MessageClass.SuccessResponse, decode(retry.data).transactionId)
    .add(AttributeType.Lifetime, { kind: 'uint32', value: 600 })
    .add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: Buffer.from('ticket') })
    .build({ integrityKey: UP_KEY, fingerprint: true });
  const actions = r.fromUpstream(withDelayFeedbackOffer(ok), 40);
  assert.deepEqual(
    actions.map((a) => a.kind),
    ['delay-negotiated', 'to-app'],
  );
  const toApp = actions[1];
  assert.ok(toApp?.kind === 'to-app');
  assert.equal(hasDelayFeedbackOffer(toApp.data), false, 'the app never sees it');
  assert.deepEqual(r.fromUpstream(report, 50), [{ kind: 'delay-report', report: { version: 1, clockMs: 5, receivedBytes: 100, oneWayDelayMs: 7 } }]);
  // A plain Binding indication (a keepalive) still goes to the app as before.
  const keepalive = new MessageBuilder(Method.Binding, MessageClass.Indication).build();
  assert.equal(one(r.fromUpstream(keepalive, 55), 'to-app').method, Method.Binding);
  // The stream is lost: the take-over Refresh offers it again; a server that does not echo it declines it.
  const move = r.moveRequest(60)[0];
  assert.ok(move?.kind === 'to-upstream');
  const moveMsg = decode(move.data);
  assert.equal(moveMsg.method, Method.Refresh);
  assert.equal(hasDelayFeedbackOffer(move.data), true);
  assert.deepEqual(r.fromUpstream(report, 65), [], 'the new stream has not negotiated it');
  const moved = new MessageBuilder(Method.Refresh, MessageClass.SuccessResponse, moveMsg.transactionId)
    .add(AttributeType.Lifetime, { kind: 'uint32', value: 600 })
    .build({ integrityKey: UP_KEY });
  assert.deepEqual(
    r.fromUpstream(moved, 70).map((a) => a.kind),
    ['delay-declined', 'moved'],
  );
});

test('the delay extension off (the default of a resigner): nothing offered, nothing decided', () => {
  const r = resigner();
  const nonce = localNonce(r, 0);
  const first = r.fromApp(appRequest(Method.Allocate, nonce), 10)[0];
  assert.ok(first?.kind === 'to-upstream');
  assert.equal(first.data.includes(Buffer.from([0xc0, 0xd7])), false);
});
