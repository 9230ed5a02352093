import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIp, parseIp, parseIPv4, parseIPv6 } from '../src/index.js';

test('IPv4: only canonical dotted decimal parses', () => {
  assert.deepEqual([...parseIPv4('192.0.2.1')!], [192, 0, 2, 1]);
  for (const bad of ['127.1', '0x7f.0.0.1', '0177.0.0.1', '2130706433', '1.2.3.256', '1.2.3.4.5', ' 1.2.3.4', '1.2.3.', '01.2.3.4']) {
    assert.equal(parseIPv4(bad), undefined, bad);
  }
});

test('IPv4: the parser agrees with the rule written as a regular expression on many near-addresses', () => {
  const rule = (text: string): number[] | undefined => {
    const parts = text.split('.');
    if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
    return parts.map(Number);
  };
  // Deterministic: a small linear congruential generator picks 3-5 parts, good and bad, and
  // sometimes one character more or less.
  let seed = 17;
  const next = (k: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % k;
  };
  const parts = ['0', '1', '9', '10', '99', '100', '199', '249', '255', '256', '300', '999', '01', '00', '1000', '', 'x', ' 1', '+1', '1e1'];
  const texts = ['0.0.0.0', '255.255.255.255', '1..2.3', '.1.2.3', '1.2.3.4.'];
  for (let i = 0; i < 20_000; i++) {
    const n = next(10) < 8 ? 4 : 3 + 2 * next(2);
    let t = Array.from({ length: n }, () => parts[next(parts.length)]).join('.');
    const at = next(t.length + 1);
    const mutation = next(8);
    if (mutation === 0) t = t.slice(0, at) + '0.5'[next(3)] + t.slice(at);
    else if (mutation === 1) t = t.slice(0, at) + t.slice(at + 1);
    texts.push(t);
  }
  let valid = 0;
  for (const t of texts) {
    const want = rule(t);
    const got = parseIPv4(t);
    assert.deepEqual(got === undefined ? undefined : [...got], want, JSON.stringify(t));
    if (want) valid++;
  }
  assert.ok(valid > 50, `only ${valid} valid addresses were generated`);
});

test('IPv6: compressed, full, embedded IPv4 and canonical output', () => {
  const cases: [string, string][] = [
    ['::', '::'],
    ['::1', '::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::ffff:127.0.0.1', '::ffff:127.0.0.1'],
    ['::127.0.0.1', '::7f00:1'],
    ['64:ff9b::7f00:1', '64:ff9b::7f00:1'],
    ['[fe80::1]', 'fe80::1'],
    ['2001:db8:1234:5678:11:2233:4455:6677', '2001:db8:1234:5678:11:2233:4455:6677'],
  ];
  for (const [text, canonical] of cases) {
    const b = parseIp(text);
    assert.ok(b, text);
    assert.equal(formatIp(b), canonical, text);
  }
  for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', ':::', '12345::', 'fe80::1%eth0', 'g::1', '1:2:3:4:5:6:7']) {
    assert.equal(parseIPv6(bad), undefined, bad);
  }
});
