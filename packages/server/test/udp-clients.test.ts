// The UDP client table and the own-address schedule, on a fake clock: who is remembered, what a
// new source is answered, when idle sources are forgotten, when addresses are looked at again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageBuilder, MessageClass, Method } from '@onionturn/protocol';
import { Client, OwnAddressWatch, UdpClients, type ClientLink } from '../src/index.js';

const link: ClientLink = { sendMessage: () => undefined, sendChannelData: () => undefined, close: () => undefined };
const client = (port: number): Client => new Client('udp', { family: 'IPv4', address: '192.0.2.9', port }, link, `udp|192.0.2.9|${port}`);
const allocate = new MessageBuilder(Method.Allocate, MessageClass.Request).build();
const binding = new MessageBuilder(Method.Binding, MessageClass.Request).build();

test('new sources: rate limited per address (any port) and in total; Allocates refused when full', () => {
  const t0 = 1_000_000;
  const table = new UdpClients({ max: 1, idleMs: 1000, rate: { perSource: 1, perSourceBurst: 2, total: 1, totalBurst: 3 } }, t0);
  assert.deepEqual(
    [table.admit('192.0.2.9', binding, t0), table.admit('192.0.2.9', binding, t0), table.admit('192.0.2.9', binding, t0)],
    ['answer', 'answer', 'rate-limited'],
  );
  assert.equal(table.admit('192.0.2.10', binding, t0), 'answer');
  assert.equal(table.admit('192.0.2.11', binding, t0), 'rate-limited', 'the total is spent');
  table.remember(3478, '192.0.2.9', 5000, client(5000), t0);
  assert.equal(table.admit('192.0.2.12', allocate, t0 + 5000), 'full', 'one remembered source is the maximum here');
  assert.equal(table.admit('192.0.2.12', binding, t0 + 6000), 'answer', 'a Binding keeps no state, so it is answered');
});

test('remembered sources are found by listener, address and port; idle ones without an allocation are forgotten', () => {
  const t0 = 1_000_000;
  const table = new UdpClients({ max: 10, idleMs: 1000, rate: { perSource: 10, perSourceBurst: 10, total: 10, totalBurst: 10 } }, t0);
  const busy = client(1);
  const idle = client(2);
  busy.pendingAllocate = Buffer.alloc(12);
  table.remember(3478, '192.0.2.9', 1, busy, t0);
  table.remember(3478, '192.0.2.9', 2, idle, t0);
  assert.equal(table.size, 2);
  assert.equal(table.get(3478, '192.0.2.9', 2, t0 + 900), idle);
  assert.equal(table.get(3479, '192.0.2.9', 2, t0), undefined, 'another listener');
  assert.equal(table.evictIdle(t0 + 1800), 0, 'seen 900 ms ago');
  assert.equal(table.evictIdle(t0 + 1901), 1);
  assert.equal(idle.closed, true);
  assert.equal(table.get(3478, '192.0.2.9', 2, t0), undefined);
  assert.equal(table.get(3478, '192.0.2.9', 1, t0 + 5000), busy, 'an allocation under way is kept');
  assert.equal(table.size, 1);
});

test('own addresses are looked at again every period, and a change is reported once', () => {
  let addrs = ['198.51.100.1', '::1'];
  const watch = new OwnAddressWatch(addrs, () => addrs, 30_000, 0);
  assert.equal(watch.changed(29_999), false);
  assert.equal(watch.changed(30_000), false, 'looked, same addresses');
  addrs = ['::1', '198.51.100.1'];
  assert.equal(watch.changed(60_000), false, 'order does not matter');
  addrs = ['198.51.100.2', '::1'];
  assert.equal(watch.changed(60_001), false, 'not yet time');
  assert.equal(watch.changed(90_000), true);
  assert.equal(watch.changed(120_000), false);
});

test('own addresses that cannot be read (out of descriptors) keep the last ones, and the next tick looks again', () => {
  let addrs: string[] | undefined = ['198.51.100.1'];
  const watch = new OwnAddressWatch(addrs, () => addrs, 30_000, 0);
  addrs = undefined;
  assert.equal(watch.changed(30_000), false, 'no answer is no change');
  assert.deepEqual(watch.addresses, ['198.51.100.1']);
  watch.reset(30_500);
  assert.deepEqual(watch.addresses, ['198.51.100.1'], 'a reload that cannot look keeps them too');
  addrs = ['198.51.100.2'];
  assert.equal(watch.changed(30_600), false, 'the reload set the next look');
  assert.equal(watch.changed(60_500), true, 'looked again once it could');
  assert.deepEqual(watch.addresses, ['198.51.100.2']);
});
