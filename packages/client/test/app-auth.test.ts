// The shim's local-credential check on a fake clock: a source (a web page's socket, say) that keeps
// guessing the local password gets a few attempts, then 401s that check nothing until its budget
// refills; other sources are not affected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttributeType, MessageBuilder, MessageClass, Method, decodeMessage, longTermKey, readText, type TransportAddress } from '@onionturn/protocol';
import { AppAuthenticator } from '../src/app-auth.js';

const LOCAL = { username: 'alice', password: 'wonderland', realm: 'onionturn.local' };
const T0 = 1_700_000_000_000;
const PAGE: TransportAddress = { family: 'IPv4', address: '127.0.0.1', port: 50_001 };
const APP: TransportAddress = { family: 'IPv4', address: '127.0.0.1', port: 40_000 };

function request(auth: AppAuthenticator, app: TransportAddress, password: string, now: number): ReturnType<AppAuthenticator['check']> {
  const nonce = auth.nonce(app, now);
  const raw = new MessageBuilder(Method.Allocate, MessageClass.Request)
    .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
    .add(AttributeType.Username, { kind: 'text', text: LOCAL.username })
    .add(AttributeType.Realm, { kind: 'text', text: LOCAL.realm })
    .add(AttributeType.Nonce, { kind: 'text', text: nonce })
    .build({ integrityKey: longTermKey(LOCAL.username, LOCAL.realm, password) });
  const msg = decodeMessage(raw);
  assert.ok(msg.ok);
  return auth.check(msg.value, app, now);
}

test('a source gets 10 wrong guesses, then 401s that check nothing (the right password too) until its budget refills', () => {
  const auth = new AppAuthenticator(LOCAL);
  for (let i = 0; i < 10; i++) assert.equal(request(auth, PAGE, `guess-${i}`, T0).kind, 'refused');
  assert.equal(auth.throttled, 0);
  const locked = request(auth, PAGE, LOCAL.password, T0);
  assert.equal(locked.kind, 'refused', 'even the right password: nothing is checked now');
  assert.equal(auth.throttled, 1);
  assert.ok(
    locked.kind === 'refused' && readText((decodeMessage(locked.data) as { ok: true; value: never }).value, AttributeType.Nonce),
    'an ordinary 401 with a nonce',
  );
  assert.equal(request(auth, APP, LOCAL.password, T0).kind, 'ok', 'another source is served');
  assert.equal(request(auth, PAGE, LOCAL.password, T0 + 6000).kind, 'ok', 'one attempt back after 6 s');
});
