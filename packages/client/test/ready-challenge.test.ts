// The held stream's challenge (ready-challenge.ts) and how a flow uses it (flow-machine.ts):
// pure, no sockets. The "server" here is our own NonceIssuer-style 401 built with the codec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttributeType,
  MessageBuilder,
  MessageClass,
  Method,
  decodeMessage,
  errorCodeValue,
  longTermKey,
  readErrorCode,
  readText,
  verifyFingerprint,
  withDelayFeedbackOffer,
  type StunMessage,
} from '@onionturn/protocol';
import { challengeAnswer, challengeProbe, firstAllocate, readChallenge } from '../src/ready-challenge.js';
import { FlowMachine, type FlowAction } from '../src/flow-machine.js';
import { ShimStats } from '../src/stats.js';

const T0 = 1_000_000;
const TXID = Buffer.alloc(12, 7);

function decoded(b: Buffer): StunMessage {
  const r = decodeMessage(b);
  if (!r.ok) throw new Error(r.error.reason);
  return r.value;
}

/** The server's answer to `request`: a 401 with realm, nonce and password algorithms (as ours sends). */
function serverChallenge(request: Buffer, opts: { code?: number; nonce?: boolean } = {}): Buffer {
  const b = new MessageBuilder(Method.Allocate, MessageClass.ErrorResponse, decoded(request).transactionId)
    .add(AttributeType.ErrorCode, errorCodeValue(opts.code ?? 401))
    .add(AttributeType.Realm, { kind: 'text', text: 'onionturn.test' });
  if (opts.nonce !== false) b.add(AttributeType.Nonce, { kind: 'text', text: 'obMatJos2AAABnonce-for-this-connection' });
  return b.build();
}

const appAllocate = (fingerprint = false): Buffer =>
  new MessageBuilder(Method.Allocate, MessageClass.Request)
    .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
    .build({ fingerprint });

function signedAllocate(): Buffer {
  return new MessageBuilder(Method.Allocate, MessageClass.Request)
    .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
    .add(AttributeType.Username, { kind: 'text', text: 'u' })
    .add(AttributeType.Realm, { kind: 'text', text: 'onionturn.test' })
    .add(AttributeType.Nonce, { kind: 'text', text: 'n' })
    .build({ integrityKey: longTermKey('u', 'onionturn.test', 'p') });
}

test('the probe is an Allocate for UDP without credentials; only its own 401 with realm and nonce is a challenge', () => {
  const probe = challengeProbe(TXID);
  const m = decoded(probe);
  assert.equal(m.method, Method.Allocate);
  assert.equal(m.messageClass, MessageClass.Request);
  assert.ok(m.transactionId.equals(TXID));
  assert.ok(firstAllocate(probe), 'what an app sends first');
  const c = readChallenge(serverChallenge(probe), TXID);
  assert.equal(readText(c as StunMessage, AttributeType.Realm), 'onionturn.test');
  assert.equal(readChallenge(serverChallenge(probe), Buffer.alloc(12, 8)), undefined, 'another transaction');
  assert.equal(readChallenge(serverChallenge(probe, { code: 400 }), TXID), undefined, '400 is no challenge');
  assert.equal(readChallenge(serverChallenge(probe, { nonce: false }), TXID), undefined, 'a 401 without a nonce');
  const allocated = new MessageBuilder(Method.Allocate, MessageClass.SuccessResponse, TXID).build();
  assert.equal(readChallenge(allocated, TXID), undefined, 'a server without authentication allocated');
  assert.equal(readChallenge(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'), TXID), undefined);
});

test("firstAllocate: an Allocate with no credentials (the shim's offer trailing it or not); not a signed one, nor another method", () => {
  assert.ok(firstAllocate(appAllocate()));
  assert.ok(firstAllocate(withDelayFeedbackOffer(appAllocate(true))), 'with the delay offer as trailer');
  assert.equal(firstAllocate(signedAllocate()), undefined);
  const withUser = new MessageBuilder(Method.Allocate, MessageClass.Request).add(AttributeType.Username, { kind: 'text', text: 'u' }).build();
  assert.equal(firstAllocate(withUser), undefined, 'a USERNAME: not a first Allocate');
  assert.equal(firstAllocate(new MessageBuilder(Method.Refresh, MessageClass.Request).build()), undefined);
  assert.equal(firstAllocate(Buffer.from([0x40, 0x01, 0, 0])), undefined, 'ChannelData');
});

test("challengeAnswer: the server's attributes under the app's transaction id, with a FINGERPRINT when the app used one", () => {
  const challenge = readChallenge(serverChallenge(challengeProbe(TXID)), TXID) as StunMessage;
  for (const fingerprint of [false, true]) {
    const request = decoded(appAllocate(fingerprint));
    const answer = decoded(challengeAnswer(challenge, request));
    assert.ok(answer.transactionId.equals(request.transactionId));
    assert.equal(answer.messageClass, MessageClass.ErrorResponse);
    assert.equal(readErrorCode(answer)?.code, 401);
    assert.equal(readText(answer, AttributeType.Nonce), readText(challenge, AttributeType.Nonce));
    assert.equal(readText(answer, AttributeType.Realm), 'onionturn.test');
    assert.equal(answer.fingerprintOffset >= 0, fingerprint);
    if (fingerprint) assert.equal(verifyFingerprint(answer), 'ok');
  }
});

/** The actions as plain values (the relay-path array is reused, so copy it at once). */
function plain(actions: readonly FlowAction[]): { kind: string; data?: Buffer }[] {
  return actions.map((a) => ('data' in a ? { kind: a.kind, data: Buffer.from(a.data) } : { kind: a.kind }));
}

function machine(kind: 'udp' | 'tcp', offerDelayFeedback = false): { m: FlowMachine; stats: ShimStats } {
  const stats = new ShimStats();
  return { m: new FlowMachine({ kind, now: T0, stats, offerDelayFeedback }), stats };
}

test('UDP pass-through on a held stream with a challenge: the queued first Allocate (and its retransmission) is answered by the shim, not sent', () => {
  const challenge = readChallenge(serverChallenge(challengeProbe(TXID)), TXID) as StunMessage;
  const { m, stats } = machine('udp', true);
  m.start();
  const first = appAllocate(true);
  m.fromAppDatagram(first, first.length, T0);
  m.fromAppDatagram(first, first.length, T0 + 100); // the app retransmits while the stream opens
  const out = plain(m.dialed({ kind: 'open', challenge }));
  assert.deepEqual(
    out.map((a) => a.kind),
    ['send-app', 'send-app'],
  );
  for (const a of out) {
    const answer = decoded(a.data as Buffer);
    assert.ok(answer.transactionId.equals(decoded(first).transactionId));
    assert.equal(readErrorCode(answer)?.code, 401);
  }
  assert.equal(stats.readyChallengesUsed, 1, 'one challenge used (the retransmission is the same Allocate)');
  // The signed Allocate goes upstream (with the shim's offer), as without a challenge.
  const signed = signedAllocate();
  const next = plain(m.fromAppDatagram(signed, signed.length, T0 + 200));
  assert.deepEqual(
    next.map((a) => a.kind),
    ['send-upstream'],
  );
});

test('UDP: without a challenge, or for a signed first Allocate, everything queued goes upstream as before', () => {
  const challenge = readChallenge(serverChallenge(challengeProbe(TXID)), TXID) as StunMessage;
  const plainFlow = machine('udp');
  plainFlow.m.start();
  const first = appAllocate();
  plainFlow.m.fromAppDatagram(first, first.length, T0);
  assert.deepEqual(
    plain(plainFlow.m.dialed({ kind: 'open' })).map((a) => a.kind),
    ['send-upstream'],
  );
  const signedFirst = machine('udp');
  signedFirst.m.start();
  const signed = signedAllocate();
  signedFirst.m.fromAppDatagram(signed, signed.length, T0);
  assert.deepEqual(
    plain(signedFirst.m.dialed({ kind: 'open', challenge })).map((a) => a.kind),
    ['send-upstream'],
  );
  assert.equal(signedFirst.stats.readyChallengesUsed, 0);
});

test('TCP pass-through: the first request is answered with the challenge and cut from the held bytes; what followed it still goes', () => {
  const challenge = readChallenge(serverChallenge(challengeProbe(TXID)), TXID) as StunMessage;
  const { m, stats } = machine('tcp');
  const first = appAllocate();
  const signed = signedAllocate();
  // The first Allocate and the start of another request in one chunk, then the rest.
  const both = Buffer.concat([first, signed]);
  const acts = plain(m.fromAppBytes(both.subarray(0, first.length + 8), T0));
  assert.ok(acts.some((a) => a.kind === 'dial'));
  m.fromAppBytes(both.subarray(first.length + 8), T0);
  const out = plain(m.dialed({ kind: 'open', challenge }));
  const toApp = out.filter((a) => a.kind === 'send-app');
  assert.equal(toApp.length, 1);
  assert.ok(decoded(toApp[0]?.data as Buffer).transactionId.equals(decoded(first).transactionId));
  const upstream = Buffer.concat(out.filter((a) => a.kind === 'send-upstream').map((a) => a.data as Buffer));
  assert.ok(upstream.equals(signed), 'only what followed the first request goes upstream');
  assert.equal(stats.readyChallengesUsed, 1);
});
