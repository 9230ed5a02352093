// Pure parts of the shim, without sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttributeType, MessageBuilder, MessageClass, Method, encodeChannelData } from '@onionturn/protocol';
import {
  FlowState,
  IsolationPolicy,
  NOT_TURN,
  connectReplyLength,
  encodeConnect,
  encodeGreeting,
  firstFrameVerdict,
  iceServers,
  managedTorrc,
  parseTorLine,
  isStunRequest,
  messageEnd,
  paddingBytes,
  parseListen,
  parseUpstream,
  replyText,
  serverName,
} from '../src/index.js';

test('firstFrameVerdict: only a STUN request may open a Tor stream; HTTP is refused at its first byte', () => {
  const request = new MessageBuilder(Method.Allocate, MessageClass.Request).build();
  assert.deepEqual(firstFrameVerdict(request), { kind: 'request' });
  assert.deepEqual(firstFrameVerdict(request.subarray(0, 8)), { kind: 'request' });
  for (let n = 0; n < 8; n++) assert.deepEqual(firstFrameVerdict(request.subarray(0, n)), { kind: 'wait' }, `${n} bytes`);
  for (const method of ['GET ', 'POST', 'PUT ', 'HEAD', 'OPTIONS', 'DELETE', 'PATCH', 'CONNECT']) {
    const v = firstFrameVerdict(Buffer.from(`${method} / HTTP/1.1\r\n`).subarray(0, 1));
    assert.equal(v.kind, 'refuse', method);
    assert.match(v.kind === 'refuse' ? v.reason : '', /ChannelData \(first byte 0x[45][0-9a-f]\) before any STUN request/);
  }
  // A TLS ClientHello (https://127.0.0.1:PORT) looks like a request type; the magic cookie settles it.
  const clientHello = Buffer.from('1603010200010001fc0303', 'hex');
  assert.deepEqual(firstFrameVerdict(clientHello.subarray(0, 7)), { kind: 'wait' });
  assert.deepEqual(firstFrameVerdict(clientHello), { kind: 'refuse', reason: 'STUN message without the magic cookie on a TURN stream' });
  assert.deepEqual(firstFrameVerdict(Buffer.from([0xff])), { kind: 'refuse', reason: 'first byte 0xff is neither STUN nor ChannelData' });
  assert.equal(firstFrameVerdict(encodeChannelData(0x4001, Buffer.from('abcd'), true)).kind, 'refuse');
  assert.equal(firstFrameVerdict(new MessageBuilder(Method.Binding, MessageClass.SuccessResponse).build()).kind, 'refuse');
  assert.equal(firstFrameVerdict(new MessageBuilder(Method.Send, MessageClass.Indication).build()).kind, 'refuse');
  const noCookie = Buffer.from(request);
  noCookie.writeUInt32BE(0x2112a443, 4);
  assert.deepEqual(firstFrameVerdict(noCookie), { kind: 'refuse', reason: 'STUN message without the magic cookie on a TURN stream' });
});

test('messageEnd: STUN whole, ChannelData without padding, garbage refused', () => {
  const stun = new MessageBuilder(Method.Binding, MessageClass.Request).build();
  assert.equal(messageEnd(stun), stun.length);
  assert.equal(isStunRequest(stun), true);
  const unpadded = encodeChannelData(0x4001, Buffer.from('abcde'), false);
  assert.equal(messageEnd(unpadded), 9);
  assert.equal(messageEnd(encodeChannelData(0x4001, Buffer.from('abcde'), true)), 9);
  assert.equal(messageEnd(Buffer.concat([encodeChannelData(0x4001, Buffer.from('abcd'), true), Buffer.alloc(4)])), NOT_TURN);
  const coturnChannel = Buffer.from('7b8b0002abcd', 'hex'); // RFC 5766 range, as coturn binds
  assert.equal(messageEnd(coturnChannel), 6);
  assert.equal(messageEnd(Buffer.from('GET / HTTP/1.1\r\n')), NOT_TURN);
  const noCookie = Buffer.from(stun);
  noCookie.writeUInt32BE(0, 4);
  assert.equal(messageEnd(noCookie), NOT_TURN);
  assert.equal(messageEnd(stun.subarray(0, 10)), NOT_TURN);
  const response = new MessageBuilder(Method.Binding, MessageClass.SuccessResponse).build();
  assert.equal(isStunRequest(response), false);
});

test('FlowState: bounded queue, lifetime from responses, Refresh 0 releases, idle after lifetime', () => {
  const f = new FlowState(0, { maxDatagrams: 2, maxBytes: 100 });
  assert.equal(f.enqueue(Buffer.alloc(10)), true);
  assert.equal(f.enqueue(Buffer.alloc(10)), true);
  assert.equal(f.enqueue(Buffer.alloc(10)), false);
  assert.equal(f.queueDropped, 1);
  assert.equal(f.open().length, 2);
  assert.equal(f.phase, 'open');
  const alloc = new MessageBuilder(Method.Allocate, MessageClass.SuccessResponse).add(AttributeType.Lifetime, { kind: 'uint32', value: 60 }).build();
  assert.equal(f.observeUpstreamStun(alloc), false);
  assert.equal(f.lifetimeS, 60);
  assert.equal(f.idleExpired(60_000), false);
  assert.equal(f.idleExpired(91_000), true);
  const refresh0 = new MessageBuilder(Method.Refresh, MessageClass.SuccessResponse).add(AttributeType.Lifetime, { kind: 'uint32', value: 0 }).build();
  assert.equal(f.observeUpstreamStun(refresh0), true);
  const refreshReq0 = new MessageBuilder(Method.Refresh, MessageClass.Request).add(AttributeType.Lifetime, { kind: 'uint32', value: 0 }).build();
  assert.equal(new FlowState(0).observeUpstreamStun(refreshReq0), false);
});

test('SOCKS5 codec: names are sent as names, IPs as addresses, replies sized, Tor codes explained', () => {
  assert.deepEqual([...encodeConnect('example.onion', 443)], [5, 1, 0, 3, 13, ...Buffer.from('example.onion'), 1, 187]);
  assert.deepEqual([...encodeConnect('127.0.0.1', 80)], [5, 1, 0, 1, 127, 0, 0, 1, 0, 80]);
  assert.equal(encodeConnect('::1', 80).length, 3 + 17 + 2);
  assert.deepEqual([...encodeGreeting(undefined)], [5, 1, 0]);
  assert.deepEqual([...encodeGreeting({ username: 'u', password: 'p' })], [5, 2, 2, 0]);
  assert.equal(connectReplyLength(Buffer.from([5, 0, 0, 1, 0, 0, 0])), 0);
  assert.equal(connectReplyLength(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9])), 10);
  assert.equal(connectReplyLength(Buffer.from([5, 0, 0, 9, 0])), -1);
  assert.match(replyText(0xf6), /invalid onion address/);
  assert.match(replyText(0x05), /refused/);
  assert.match(replyText(0x99), /unknown SOCKS reply 0x99/);
});

test('endpoints: upstream forms, loopback-only listener', () => {
  assert.deepEqual(parseUpstream('tls://turn.example.org:5349'), { ok: true, value: { transport: 'tls', host: 'turn.example.org', port: 5349, label: 'tls://turn.example.org:5349' } });
  const onion = parseUpstream('abcdefghijklmnop.onion:3478');
  assert.equal(onion.ok && onion.value.transport, 'tcp');
  assert.equal(parseUpstream('turn.example.org:3478').ok, false);
  assert.equal(parseUpstream('udp://1.2.3.4:3478').ok, false);
  assert.equal(parseUpstream('tcp://[::1]:3478').ok, true);
  assert.equal(parseListen('127.0.0.2:3478', false).ok, true);
  assert.equal(parseListen('[::1]:3478', false).ok, true);
  const remote = parseListen('192.168.1.5:3478', false);
  assert.equal(remote.ok, false);
  assert.match(remote.ok ? '' : remote.reason, /--allow-remote/);
  assert.equal(parseListen('192.168.1.5:3478', true).ok, true);
  assert.equal(parseListen('localhost:3478', true).ok, false);
});

test('isolation: per-flow fresh credentials, shared one pair', () => {
  const p = new IsolationPolicy('per-flow');
  assert.notEqual(p.next().username, p.next().username);
  const s = new IsolationPolicy('shared');
  assert.deepEqual(s.next(), s.next());
});

test('iceServers: UDP and TCP urls for the listener', () => {
  assert.deepEqual(iceServers('::1', 3478, { username: 'u', password: 'p' }), [
    { urls: ['turn:[::1]:3478?transport=udp', 'turn:[::1]:3478?transport=tcp'], username: 'u', credential: 'p' },
  ]);
});

test('embedded tor: torrc with an auto SocksPort and the extra lines; log lines understood', () => {
  const rc = managedTorrc({ dataDir: '/tmp/onionturn-tor-x', owningPid: 42, extra: 'TestingTorNetwork 1\n\n' });
  assert.match(rc, /^SocksPort 127\.0\.0\.1:auto$/m);
  assert.match(rc, /^__OwningControllerProcess 42$/m);
  assert.ok(rc.endsWith('TestingTorNetwork 1\n'));
  assert.throws(() => managedTorrc({ dataDir: '/tmp/with space', owningPid: 1 }));
  assert.deepEqual(parseTorLine('Nov 22 01:47:55.228 [notice] Opened Socks listener connection (ready) on 127.0.0.1:44943'), { kind: 'socks', host: '127.0.0.1', port: 44943 });
  assert.deepEqual(parseTorLine('Nov 22 01:47:57.000 [notice] Bootstrapped 5% (conn): Connecting to a relay'), { kind: 'bootstrap', percent: 5, summary: 'Connecting to a relay' });
  assert.deepEqual(parseTorLine('Nov 22 [err] Reading config failed'), { kind: 'problem', level: 'err', text: 'Reading config failed' });
  assert.equal(parseTorLine('Nov 22 [notice] Parsing GEOIP IPv4 file'), undefined);
});

test('serverName: the label only with detail, else its place in the list (SafeLogging)', () => {
  const list = ['tcp://turn.example:3478', `${'a'.repeat(56)}.onion:3478`].map((t) => {
    const r = parseUpstream(t);
    if (!r.ok) throw new Error(r.reason);
    return r.value;
  });
  assert.equal(serverName(list, 0, false), 'server #1');
  assert.equal(serverName(list, 1, false), 'server #2');
  assert.equal(serverName(list, 0, true), 'tcp://turn.example:3478');
  assert.equal(serverName(list, 1, true), `${'a'.repeat(56)}.onion:3478`);
});

test('paddingBytes: 0-3 zero bytes, the same views every time (no allocation on the relay path)', () => {
  for (let n = 0; n < 4; n++) {
    assert.deepEqual(paddingBytes(n), Buffer.alloc(n));
    assert.equal(paddingBytes(n), paddingBytes(n));
  }
});

test('isStunRequest: the request class only (classOf from protocol)', () => {
  for (const [cls, want] of [[MessageClass.Request, true], [MessageClass.Indication, false], [MessageClass.SuccessResponse, false], [MessageClass.ErrorResponse, false]] as const) {
    for (const method of [Method.Binding, Method.Allocate, Method.Refresh, Method.ChannelBind]) assert.equal(isStunRequest(new MessageBuilder(method, cls).build()), want, `${method}/${cls}`);
  }
  assert.equal(isStunRequest(Buffer.from([0x40, 0x01, 0, 0])), false, 'ChannelData');
});
