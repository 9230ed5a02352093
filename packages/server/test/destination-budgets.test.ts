// Budgets per destination address over the whole server, and the default UDP port rules: the pure
// table on a fake clock, then through the core (harness: fake links, fake relay sockets).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIp } from '@onionturn/protocol';
import { DEFAULT_DENIED_UDP_PORTS, DestinationBudgets, PeerPolicy, parsePolicyRule, type PolicyRule } from '../src/index.js';
import { peer, world, type World } from './harness.js';

const ip = (text: string): Buffer => parseIp(text) as Buffer;

test('one entry per destination address; IPv4-mapped IPv6 is the IPv4 address', () => {
  const t = new DestinationBudgets({ bytesPerSecond: 1000, packetsPerSecond: 10, maxDestinations: 10 }, 0);
  const a = t.entry(ip('93.184.216.34'), 0);
  assert.equal(t.entry(ip('::ffff:93.184.216.34'), 0), a);
  assert.notEqual(t.entry(ip('93.184.216.35'), 0), a);
  assert.equal(t.size, 2);
});

test('packets and bytes per second, refilled with time', () => {
  const t = new DestinationBudgets({ bytesPerSecond: 1000, packetsPerSecond: 3, maxDestinations: 10 }, 0);
  const e = t.entry(ip('93.184.216.34'), 0);
  assert.deepEqual([e.take(10, 0), e.take(10, 0), e.take(10, 0), e.take(10, 0)], [true, true, true, false], 'three packets');
  const f = t.entry(ip('93.184.216.35'), 0);
  assert.deepEqual([f.take(600, 0), f.take(600, 0)], [true, false], '1000 bytes');
  assert.equal(e.take(10, 500), true, 'half a second later: 1.5 packets back');
  assert.equal(f.take(600, 1000), true);
});

test('bounded: idle entries are swept; when full of busy ones, newcomers share one overflow entry', () => {
  const t = new DestinationBudgets({ bytesPerSecond: 1000, packetsPerSecond: 2, maxDestinations: 2 }, 0);
  const a = t.entry(ip('93.184.216.1'), 0);
  const b = t.entry(ip('93.184.216.2'), 0);
  a.take(1, 0);
  b.take(1, 0);
  const c = t.entry(ip('93.184.216.3'), 0);
  const d = t.entry(ip('93.184.216.4'), 0);
  assert.equal(c, d, 'the overflow entry');
  assert.equal(t.size, 2);
  // A second later both are full again (idle): the next newcomer sweeps them out.
  const e = t.entry(ip('93.184.216.5'), 1000);
  assert.notEqual(e, c);
  assert.equal(a.evicted, true);
  assert.equal(b.evicted, true);
  assert.equal(t.size, 1);
  t.tick(5000);
  assert.equal(t.size, 1, 'the tick sweeps only every 10 s');
  t.tick(11_000);
  assert.equal(t.size, 0);
});

function sendAll(w: World, clients: number, perClient: number, address: string, port: number): void {
  for (let i = 0; i < clients; i++) {
    const c = w.client();
    c.allocate();
    c.permit(peer(address, port));
    for (let k = 0; k < perClient; k++) c.send(peer(address, port), Buffer.alloc(100));
  }
}

test('the core: all allocations together stay within one destination budget, other destinations are untouched', () => {
  const w = world({ limits: { packetsPerDestination: 10, bandwidthPerDestination: 0 } });
  sendAll(w, 4, 5, '93.184.216.34', 4000);
  const sent = (address: string): number => w.relays.reduce((n, r) => n + r.sent.filter((s) => s.address === address).length, 0);
  assert.equal(sent('93.184.216.34'), 10, 'four clients of five datagrams, ten allowed');
  assert.equal(w.core.stats.droppedDestination, 10);
  sendAll(w, 1, 5, '93.184.216.35', 4000);
  assert.equal(sent('93.184.216.35'), 5);
  w.clock.now += 1000;
  sendAll(w, 1, 5, '93.184.216.34', 4000);
  assert.equal(sent('93.184.216.34'), 15, 'a second later, ten more');
});

test('the core: 0 turns the destination budget off', () => {
  const w = world({ limits: { packetsPerDestination: 0, bandwidthPerDestination: 0 } });
  sendAll(w, 4, 5, '93.184.216.34', 4000);
  assert.equal(w.core.stats.droppedDestination, 0);
  assert.equal(
    w.relays.reduce((n, r) => n + r.sent.length, 0),
    20,
  );
});

test('default UDP port rules: amplifier and discovery ports refused, others (DNS, QUIC, WebRTC) allowed; an operator rule reopens one', () => {
  const p = new PeerPolicy();
  const v4 = ip('93.184.216.34');
  for (const port of [7, 17, 19, 69, 111, 123, 137, 138, 161, 162, 389, 427, 520, 623, 1434, 1900, 3283, 3702, 5353, 5683, 10001, 11211]) {
    assert.equal(p.allows(v4, port), false, `port ${port}`);
    assert.equal(p.allows(ip('2606:2800:220:1:248:1893:25c8:1946'), port), false, `IPv6 port ${port}`);
  }
  for (const port of [53, 443, 500, 3478, 4500, 5060, 19302, 27015, 51820]) assert.equal(p.allows(v4, port), true, `port ${port}`);
  assert.equal(DEFAULT_DENIED_UDP_PORTS.length, 20);
  const ntp = new PeerPolicy({ rules: [rule('accept *:123')] });
  assert.equal(ntp.allows(v4, 123), true);
  assert.equal(ntp.allows(v4, 19), false);
  assert.equal(new PeerPolicy({ defaultPortRules: false }).allows(v4, 19), true);
});

function rule(text: string): PolicyRule {
  const r = parsePolicyRule(text);
  if (!r.ok) throw new Error(r.reason);
  return r.rule;
}
