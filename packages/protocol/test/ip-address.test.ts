import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIp, parseIp, parseIPv4, parseIPv6 } from '../src/index.js';

test('IPv4: only canonical dotted decimal parses', () => {
  assert.deepEqual([...parseIPv4('192.0.2.1')!], [192, 0, 2, 1]);
  for (const bad of ['127.1', '0x7f.0.0.1', '0177.0.0.1', '2130706433', '1.2.3.256', '1.2.3.4.5', ' 1.2.3.4', '1.2.3.', '01.2.3.4']) {
    assert.equal(parseIPv4(bad), undefined, bad);
  }
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
