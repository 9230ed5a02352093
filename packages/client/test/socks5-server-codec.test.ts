// The SOCKS5 front end's codec (server side, RFC 1928/1929, §7 UDP header, Tor's RESOLVE), on bytes
// as PySocks, curl and tor write them. No sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthMethod, Reply } from '../src/socks5-codec.js';
import {
  SocksCommand,
  chooseMethod,
  encodeReply,
  encodeResolve,
  encodeUdpHeader,
  isOnionName,
  parseGreeting,
  parseRequest,
  parseResolveReply,
  parseUdpDatagram,
  parseUserPass,
} from '../src/socks5-server-codec.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');

test('greeting: methods offered, incomplete, not SOCKS5, none offered', () => {
  assert.deepEqual(parseGreeting(hex('05 02 00 02')), { kind: 'ok', value: [0, 2], length: 4 });
  assert.deepEqual(parseGreeting(hex('05 02 00')), { kind: 'need' });
  assert.equal(parseGreeting(hex('04 01 00')).kind, 'bad');
  assert.equal(parseGreeting(hex('05 00')).kind, 'bad');
});

test('method choice: username/password when offered (isolation), none otherwise, 0xFF when neither', () => {
  assert.equal(chooseMethod([AuthMethod.None, AuthMethod.UserPass]), AuthMethod.UserPass);
  assert.equal(chooseMethod([AuthMethod.None]), AuthMethod.None);
  assert.equal(chooseMethod([0x01, 0x80]), AuthMethod.NoAcceptable);
});

test('RFC 1929 username/password: parsed whole, incomplete waits, a wrong version is refused', () => {
  const buf = Buffer.concat([hex('01 05'), Buffer.from('alice'), hex('03'), Buffer.from('pwd'), hex('05')]);
  assert.deepEqual(parseUserPass(buf), { kind: 'ok', value: { username: 'alice', password: 'pwd' }, length: 11 });
  assert.deepEqual(parseUserPass(buf.subarray(0, 9)), { kind: 'need' });
  assert.equal(parseUserPass(hex('02 01 61 01 62')).kind, 'bad');
});

test('request: UDP ASSOCIATE with IPv4, IPv6 and a name; a bad address type is its own verdict', () => {
  assert.deepEqual(parseRequest(hex('05 03 00 01 00000000 1f90')), {
    kind: 'ok',
    value: { command: SocksCommand.UdpAssociate, destination: { address: { kind: 'ip', host: '0.0.0.0', family: 4 }, port: 8080 } },
    length: 10,
  });
  const v6 = parseRequest(hex('05 01 00 04 00000000000000000000000000000001 0035'));
  assert.equal(v6.kind, 'ok');
  if (v6.kind === 'ok') assert.deepEqual(v6.value.destination, { address: { kind: 'ip', host: '::1', family: 6 }, port: 53 });
  // PySocks with rdns sends DST.ADDR "0" as a name.
  const named = parseRequest(Buffer.concat([hex('05 03 00 03 01'), Buffer.from('0'), hex('d431')]));
  assert.equal(named.kind, 'ok');
  if (named.kind === 'ok') assert.deepEqual(named.value.destination, { address: { kind: 'name', host: '0' }, port: 0xd431 });
  assert.deepEqual(parseRequest(hex('05 03 00 09 00 00')), { kind: 'bad-address-type' });
  assert.deepEqual(parseRequest(hex('05 03 00 01 7f00')), { kind: 'need' });
  assert.equal(parseRequest(Buffer.concat([hex('05 03 00 03 03'), Buffer.from('a\0b'), hex('0035')])).kind, 'bad');
});

test('reply: the bound relay address (IPv4, IPv6) and the all-zeros form', () => {
  assert.deepEqual(encodeReply(Reply.Succeeded, { host: '127.0.0.1', port: 40000 }), hex('05 00 00 01 7f000001 9c40'));
  assert.deepEqual(encodeReply(Reply.CommandNotSupported), hex('05 07 00 01 00000000 0000'));
  assert.deepEqual(encodeReply(Reply.Succeeded, { host: '::1', port: 1 }), hex('05 00 00 04 00000000000000000000000000000001 0001'));
});

test('UDP request header (RFC 1928 §7): parsed, FRAG != 0 and bad address types dropped by name', () => {
  const dg = Buffer.concat([hex('0000 00 01 7f000001 0035'), Buffer.from('query')]);
  const p = parseUdpDatagram(dg);
  assert.equal(p.kind, 'ok');
  if (p.kind === 'ok') {
    assert.deepEqual(p.value.destination, { address: { kind: 'ip', host: '127.0.0.1', family: 4 }, port: 53 });
    assert.equal(p.value.data.toString(), 'query');
  }
  const named = parseUdpDatagram(Buffer.concat([hex('0000 00 03 0c'), Buffer.from('example.test'), hex('0035'), Buffer.from('x')]));
  assert.equal(named.kind === 'ok' && named.value.destination.address.host, 'example.test');
  assert.deepEqual(parseUdpDatagram(Buffer.concat([hex('0000 01 01 7f000001 0035'), Buffer.from('x')])), { kind: 'bad', reason: 'fragmented' });
  assert.deepEqual(parseUdpDatagram(hex('0000 00 07 7f000001 0035')), { kind: 'bad', reason: 'bad-address-type' });
  assert.deepEqual(parseUdpDatagram(hex('0000 00 01 7f00')), { kind: 'bad', reason: 'short' });
  assert.deepEqual(parseUdpDatagram(hex('00')), { kind: 'bad', reason: 'short' });
  // An empty datagram is a datagram.
  const empty = parseUdpDatagram(hex('0000 00 01 7f000001 0035'));
  assert.equal(empty.kind === 'ok' && empty.value.data.length, 0);
});

test('UDP header for the app names where the datagram came from (IP or an onion name)', () => {
  assert.deepEqual(encodeUdpHeader('10.0.0.1', 53), hex('000000 01 0a000001 0035'));
  const onion = 'a'.repeat(56) + '.onion';
  assert.deepEqual(encodeUdpHeader(onion, 9), Buffer.concat([hex('000000 03 3e'), Buffer.from(onion), hex('0009')]));
});

test("Tor's RESOLVE: request with the name, reply with the address", () => {
  assert.deepEqual(encodeResolve('example.test'), Buffer.concat([hex('05 f0 00 03 0c'), Buffer.from('example.test'), hex('0000')]));
  assert.deepEqual(parseResolveReply(hex('05 00 00 01 7f000001 0000')), {
    kind: 'ok',
    value: { code: 0, address: { kind: 'ip', host: '127.0.0.1', family: 4 } },
    length: 10,
  });
  assert.equal(parseResolveReply(hex('05 04 00 01 00000000 0000')).kind === 'ok', true);
  assert.deepEqual(parseResolveReply(hex('05 00 00 01 7f')), { kind: 'need' });
});

test('onion names: v3 (56 base32 characters), subdomains, a trailing dot; not v2 or other names', () => {
  const v3 = 'abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx';
  assert.equal(isOnionName(`${v3}.onion`), true);
  assert.equal(isOnionName(`www.${v3}.ONION.`), true);
  assert.equal(isOnionName('expyuzz4wqqyqhjn.onion'), false);
  assert.equal(isOnionName('example.test'), false);
});
