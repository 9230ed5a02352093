// A step of the wall clock (NTP correcting a drifted clock, a VM resumed) must not end or stretch
// calls: allocation, permission and channel lifetimes, nonces and rates run on a monotonic clock;
// only REST credentials, whose expiry is a wall-clock time by design, follow the wall clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { restPassword } from '@onionturn/credentials';
import { AttributeType, MessageClass, Method } from '@onionturn/protocol';
import { restSecrets } from '../src/index.js';
import { errorCode, peer, world } from './harness.js';

const HOUR = 3_600_000;
const SECRET = 'clock-step-secret';
const PEER = peer('93.184.216.34', 5000);

function restWorld(ttlSeconds: number) {
  const w = world({ lookup: restSecrets({ secrets: [SECRET] }) });
  const c = w.client();
  c.username = `${Math.floor(w.clock.now / 1000) + ttlSeconds}:caller`;
  c.password = restPassword(SECRET, c.username);
  return { w, c };
}

test('wall clock stepped an hour forward: the allocation, its channel and its nonce live on; ticks expire nothing', () => {
  const { w, c } = restWorld(3 * 3600);
  assert.equal(c.allocate().messageClass, MessageClass.SuccessResponse);
  assert.equal(c.bind(0x4000, PEER).messageClass, MessageClass.SuccessResponse);
  const relay = w.relays[0];
  assert.ok(relay);
  w.clock.wallStep += HOUR;
  w.core.tick();
  assert.equal(w.core.allocationCount, 1, 'still allocated after the step');
  c.channelData(0x4000, Buffer.from('after the step'));
  assert.equal(relay.sent.at(-1)?.data.toString(), 'after the step', 'the channel still relays');
  const nonceBefore = c.nonce;
  const refreshed = c.request(Method.Refresh, [[AttributeType.Lifetime, { kind: 'uint32', value: 600 }]]);
  assert.equal(refreshed.messageClass, MessageClass.SuccessResponse);
  assert.equal(c.nonce, nonceBefore, 'the nonce was not made stale by the step (no 438 round trip)');
});

test('wall clock stepped past the credential expiry: the credential has expired (Refresh 401, new Allocate 401); the allocation ends at its own lifetime', () => {
  const { w, c } = restWorld(1800);
  const granted = c.allocate();
  assert.equal(granted.messageClass, MessageClass.SuccessResponse);
  w.clock.wallStep += HOUR;
  w.core.tick();
  assert.equal(w.core.allocationCount, 1, 'not cut off mid-lifetime by the step');
  assert.equal(errorCode(c.request(Method.Refresh, [[AttributeType.Lifetime, { kind: 'uint32', value: 600 }]])), 401);
  const other = w.client();
  other.username = c.username;
  other.password = c.password;
  assert.equal(errorCode(other.allocate()), 401, 'an expired credential allocates nothing');
  w.clock.now += 600_000;
  w.core.tick();
  assert.equal(w.core.allocationCount, 0, 'gone when its granted lifetime ran out');
});

test('wall clock stepped an hour back: the allocation still expires after its lifetime, not an hour later', () => {
  const { w, c } = restWorld(3 * 3600);
  assert.equal(c.allocate().messageClass, MessageClass.SuccessResponse);
  w.clock.wallStep -= HOUR;
  w.clock.now += 599_000;
  w.core.tick();
  assert.equal(w.core.allocationCount, 1);
  w.clock.now += 2000;
  w.core.tick();
  assert.equal(w.core.allocationCount, 0, 'expired on time');
});
