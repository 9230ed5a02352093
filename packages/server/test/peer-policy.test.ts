// Peer policy parsing and matching, with the spellings an attacker would try.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIp } from '@onionturn/protocol';
import { DEFAULT_DENIED_IPV4, PeerPolicy, parseAllowPeer, parsePolicyRule, type PolicyRule } from '../src/index.js';

function allows(policy: PeerPolicy, address: string, port = 3478): boolean {
  const ip = parseIp(address);
  assert.ok(ip, `test address ${address} must parse`);
  return policy.allows(ip, port);
}

function rule(text: string): PolicyRule {
  const r = parsePolicyRule(text);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r.rule;
}

const policy = new PeerPolicy({ ownAddresses: ['198.51.200.7', '2001:4860:1::7'] });

test('the default denies every listed range, including the bypass forms', () => {
  const denied = [
    '0.0.0.0',
    '0.1.2.3',
    '127.0.0.1',
    '127.255.255.254',
    '10.0.0.1',
    '100.64.0.1',
    '100.127.255.255',
    '169.254.169.254',
    '172.16.0.1',
    '172.31.255.255',
    '192.0.0.8',
    '192.0.2.1',
    '192.88.99.1',
    '192.168.1.1',
    '198.18.0.1',
    '198.19.255.255',
    '198.51.100.1',
    '203.0.113.1',
    '224.0.0.1',
    '239.255.255.250',
    '240.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    '[::]',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::127.0.0.1',
    '::7f00:1',
    '::ffff:10.0.0.1',
    '::ffff:169.254.169.254',
    '::ffff:0.0.0.0',
    '::0.0.0.0',
    '2002:7f00:1::',
    '2002:c0a8:101::1',
    '64:ff9b::7f00:1',
    '64:ff9b::8.8.8.8',
    '64:ff9b:1::1',
    '100::1',
    '2001::1',
    '2001:0:4136:e378:8000:63bf:3fff:fdd2',
    '2001:db8::1',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    'ff02::1',
    '0:0:0:0:0:ffff:7f00:0001',
    '::FFFF:127.0.0.1',
  ];
  for (const a of denied) assert.equal(allows(policy, a), false, a);
});

test('ordinary public peers are allowed', () => {
  for (const a of [
    '8.8.8.8',
    '93.184.216.34',
    '1.1.1.1',
    '2001:4860:4860::8888',
    '2a00:1450::1',
    '::ffff:8.8.8.8',
    '100.128.0.1',
    '172.32.0.1',
    '198.20.0.1',
  ]) {
    assert.equal(allows(policy, a), true, a);
  }
});

test("the server's own addresses are denied in every spelling", () => {
  assert.equal(allows(policy, '198.51.200.7'), false);
  assert.equal(allows(policy, '::ffff:198.51.200.7'), false);
  assert.equal(allows(policy, '2001:4860:1::7'), false);
  assert.equal(allows(policy, '2001:4860:1:0:0:0:0:7'), false);
});

test('the default list covers each IPv4 range in mapped and compatible IPv6 form', () => {
  for (const cidr of DEFAULT_DENIED_IPV4) {
    const base = cidr.split('/')[0]!;
    assert.equal(allows(policy, base), false, base);
    assert.equal(allows(policy, `::ffff:${base}`), false, `::ffff:${base}`);
    if (base !== '0.0.0.0') assert.equal(allows(policy, `::${base}`), false, `::${base}`);
  }
});

test('IPv4-compatible addresses are denied whole, even of public IPv4 addresses', () => {
  for (const a of ['::8.8.8.8', '::808:808', '::1.2.3.4', '0:0:0:0:0:0:5db8:d822']) assert.equal(allows(policy, a), false, a);
  assert.equal(allows(policy, '::ffff:8.8.8.8'), true, 'IPv4-mapped public addresses stay reachable (IPv4 relay)');
});

test('IPv4-translated, site-local and IPv6 benchmarking addresses are denied', () => {
  for (const a of ['::ffff:0:808:808', 'fec0::1', 'feff::1', '2001:2::1', '2001:2:0:ffff::1']) assert.equal(allows(policy, a), false, a);
  assert.equal(allows(policy, '2001:3::1'), true, 'just past the benchmarking block');
});

test('parser: Tor ExitPolicy forms', () => {
  assert.deepEqual(
    [
      rule('accept *:*'),
      rule('reject *4:80'),
      rule('accept *6:1000-2000'),
      rule('reject 10.0.0.0/255.0.0.0:*'),
      rule('accept [2001:db8::]/32:443'),
      rule('reject 1.2.3.4'),
    ].map((r) => [r.accept, r.family, r.bits, r.portMin, r.portMax]),
    [
      [true, undefined, 0, 0, 65535],
      [false, 4, 0, 80, 80],
      [true, 6, 0, 1000, 2000],
      [false, 4, 8, 0, 65535],
      [true, 6, 32, 443, 443],
      [false, 4, 32, 0, 65535],
    ],
  );
});

test('parser: spellings that could fool a check are errors, not guesses', () => {
  for (const bad of [
    'reject 127.1:*',
    'reject 0x7f.0.0.1:*',
    'reject 2130706433:*',
    'reject 0177.0.0.1:*',
    'reject 127.0.0.01:*',
    'reject 0x7f000001:*',
    'reject 127.0.0.1/33:*',
    'reject 10.0.0.0/255.0.255.0:*',
    'reject ::1:*',
    'reject [::1/8:*',
    'accept *:70000',
    'accept *:90-80',
    'allow *:*',
    'reject *4/8:*',
    'reject [fe80::1%eth0]:*',
  ]) {
    assert.equal(parsePolicyRule(bad).ok, false, bad);
  }
});

test('operator rules follow the deny list, first match wins; ports are respected', () => {
  const p = new PeerPolicy({ rules: [rule('accept 8.8.0.0/16:3478-3479'), rule('reject 8.8.8.8:*'), rule('reject *6:53'), rule('reject *:1-1023')] });
  assert.equal(allows(p, '8.8.8.8', 3478), true, 'the first matching rule wins');
  assert.equal(allows(p, '8.8.8.8', 3480), false);
  assert.equal(allows(p, '::ffff:8.8.8.8', 3479), true, 'mapped form follows the IPv4 rule');
  assert.equal(allows(p, '8.8.4.4', 3480), true);
  assert.equal(allows(p, '8.8.4.4', 25), false);
  assert.equal(allows(p, '2001:4860:4860::8888', 53), false);
  assert.equal(allows(p, '2001:4860:4860::8888', 5300), true);
});

test("the built-in deny list comes before the operator's rules: accept *:* reopens nothing", () => {
  for (const text of ['accept *:*', 'accept *:1024-65535', 'accept6 *:*', 'accept 10.0.0.0/8:*', 'accept [::1]:*']) {
    const p = new PeerPolicy({ rules: [rule(text)] });
    for (const a of ['127.0.0.1', '10.0.0.1', '192.168.1.1', '169.254.169.254', '168.63.129.16', '::1', 'fe80::1', 'fd00:ec2::254', '::ffff:127.0.0.1']) {
      assert.equal(allows(p, a, 8080), false, `${text}: ${a}`);
    }
    assert.equal(allows(p, '8.8.8.8', 8080), true, `${text}: a public peer`);
  }
});

test('--allow-peer reopens exactly the range (and ports) it names, before the deny list; never own addresses', () => {
  const a = parseAllowPeer('10.1.0.0/16:3478-3479');
  const b = parseAllowPeer('[fd00::]/8');
  assert.ok(a.ok && b.ok);
  const p = new PeerPolicy({ allowed: [a.rule, b.rule], rules: [rule('reject *:*')], ownAddresses: ['10.1.0.5'] });
  assert.equal(allows(p, '10.1.2.3', 3478), true);
  assert.equal(allows(p, '10.1.2.3', 3480), false);
  assert.equal(allows(p, '10.2.0.1', 3478), false);
  assert.equal(allows(p, 'fd12::1', 9), true);
  assert.equal(allows(p, '10.1.0.5', 3478), false, 'an own address stays denied');
  for (const bad of ['*:*', '*', 'reject 10.0.0.0/8', '10.0.0.0/33', '127.1']) assert.equal(parseAllowPeer(bad).ok, false, bad);
  assert.match((parseAllowPeer('10.0.0.0/33') as { reason: string }).reason, /--allow-peer '10\.0\.0\.0\/33'/);
});

test('--allow-loopback-peers lets loopback through (own loopback addresses too), nothing else', () => {
  const p = new PeerPolicy({ allowLoopback: true, ownAddresses: ['127.0.0.1', '198.51.200.7'] });
  assert.equal(allows(p, '127.0.0.1'), true);
  assert.equal(allows(p, '::1'), true);
  assert.equal(allows(p, '::ffff:127.0.0.1'), true);
  assert.equal(allows(p, '10.0.0.1'), false);
  assert.equal(allows(p, '198.51.200.7'), false);
});

test('accept6/reject6 lines are about IPv6 only: "*" there is "*6", IPv4 addresses are errors (Tor semantics)', () => {
  assert.equal(rule('accept6 *:*').family, 6);
  assert.equal(rule('reject6 *:25').family, 6);
  assert.equal(rule('accept6 [2001:db8::]/32:*').family, 6);
  for (const bad of ['accept6 10.0.0.0/8:*', 'reject6 1.2.3.4:25', 'accept6 *4:*']) assert.equal(parsePolicyRule(bad).ok, false, bad);
  const p = new PeerPolicy({ rules: [rule('accept6 *:*')] });
  assert.equal(allows(p, '10.0.0.1'), false, 'IPv4 still meets the built-in deny list');
  assert.equal(allows(p, '127.0.0.1'), false);
  assert.equal(allows(p, '::ffff:10.0.0.1'), false);
  assert.equal(allows(p, '8.8.8.8'), true);
  assert.equal(allows(p, 'fe80::1'), false, 'the deny list comes first (--allow-peer reopens a range)');
  assert.equal(allows(p, '2001:4860:4860::8888'), true);
  const q = new PeerPolicy({ rules: [rule('reject *6:53')] });
  assert.equal(allows(q, '8.8.8.8', 53), true, '*6 does not reach IPv4 peers');
  assert.equal(allows(q, '2001:4860:4860::8888', 53), false);
});
