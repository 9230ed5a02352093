// The datagram gateway's rules on one stream, no sockets, time passed in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeDatagramFrame, encodeDatagramPreamble } from '@onionturn/protocol';
import { GatewaySession, GatewayStats, type GatewayCloseReason, type UdpGatewayLimits } from '../src/index.js';

const LIMITS: UdpGatewayLimits = { maxStreams: 4, maxQueuedBytes: 1000, idleTimeoutMs: 10_000, maxDatagram: 100 };

function setup(limits: UdpGatewayLimits = LIMITS): {
  session: GatewaySession;
  stats: GatewayStats;
  toTarget: string[];
  toStream: Buffer[];
  closes: { reason: GatewayCloseReason; detail: string }[];
  targetFull: { value: boolean };
  queued: { value: number };
} {
  const toTarget: string[] = [];
  const toStream: Buffer[] = [];
  const closes: { reason: GatewayCloseReason; detail: string }[] = [];
  const targetFull = { value: false };
  const queued = { value: 0 };
  const stats = new GatewayStats();
  const session = new GatewaySession(
    {
      toTarget: (p) => {
        if (targetFull.value) return false;
        toTarget.push(p.toString());
        return true;
      },
      toStream: (b) => toStream.push(Buffer.from(b)),
      streamQueued: () => queued.value,
      close: (reason, detail) => closes.push({ reason, detail }),
    },
    limits,
    stats,
    0,
  );
  return { session, stats, toTarget, toStream, closes, targetFull, queued };
}

const frame = (text: string): Buffer => encodeDatagramFrame(Buffer.from(text)) as Buffer;

test('the version byte is answered with ours, datagrams go to the target, answers come back framed', () => {
  const t = setup();
  t.session.fromStream(Buffer.concat([Buffer.from([3]), frame('q1'), frame('q2')]), 1);
  assert.deepEqual(
    t.toStream.map((b) => b.toString('hex')),
    ['01'],
    'a newer client is answered with version 1',
  );
  assert.deepEqual(t.toTarget, ['q1', 'q2']);
  t.session.fromTarget(Buffer.from('a1'), 2);
  assert.equal(t.toStream[1]?.toString('hex'), '0000026131');
  assert.equal(t.stats.datagramsToTarget, 2);
  assert.equal(t.stats.datagramsFromTarget, 1);
  assert.equal(t.stats.bytesFromTarget, 2);
  assert.deepEqual(t.closes, []);
});

test('nothing goes to the stream before the client spoke', () => {
  const t = setup();
  t.session.fromTarget(Buffer.from('early'), 1);
  assert.deepEqual(t.toStream, []);
});

test('garbage framing closes the stream once, counted; nothing reaches the target', () => {
  const t = setup();
  t.session.fromStream(Buffer.from('GET / HTTP/1.1\r\n'), 1);
  assert.equal(t.closes.length, 1);
  assert.equal(t.closes[0]?.reason, 'framing');
  assert.equal(t.stats.closedFraming, 1);
  t.session.fromStream(Buffer.concat([encodeDatagramPreamble(), frame('x')]), 2);
  assert.deepEqual(t.toTarget, []);
  assert.equal(t.closes.length, 1);
  const bad = setup();
  bad.session.fromStream(Buffer.concat([encodeDatagramPreamble(), frame('ok'), Buffer.from([9, 0, 0])]), 1);
  assert.deepEqual(bad.toTarget, ['ok']);
  assert.equal(bad.closes[0]?.reason, 'framing');
  assert.match(bad.closes[0]?.detail ?? '', /frame type 9/);
});

test('a datagram over the limit is dropped and counted; the stream goes on', () => {
  const t = setup();
  t.session.fromStream(Buffer.concat([encodeDatagramPreamble(), encodeDatagramFrame(Buffer.alloc(101, 0x61)) as Buffer, frame('small')]), 1);
  assert.deepEqual(t.toTarget, ['small']);
  assert.equal(t.stats.droppedOversized, 1);
  assert.deepEqual(t.closes, []);
});

test('full queues drop and count, both ways', () => {
  const t = setup();
  t.session.fromStream(encodeDatagramPreamble(), 0);
  t.targetFull.value = true;
  t.session.fromStream(frame('lost'), 1);
  assert.deepEqual(t.toTarget, []);
  t.queued.value = 999;
  t.session.fromTarget(Buffer.from('lost too'), 1);
  assert.equal(t.toStream.length, 1, 'only the version byte');
  assert.equal(t.stats.droppedQueueFull, 2);
  t.targetFull.value = false;
  t.queued.value = 0;
  t.session.fromStream(frame('fine'), 2);
  t.session.fromTarget(Buffer.from('fine'), 2);
  assert.deepEqual(t.toTarget, ['fine']);
  assert.equal(t.toStream.length, 2);
});

test('idle: closed after the timeout without a datagram either way; traffic keeps it open', () => {
  const t = setup();
  t.session.fromStream(encodeDatagramPreamble(), 0);
  assert.equal(t.session.checkIdle(9_999), false);
  t.session.fromTarget(Buffer.from('keepalive'), 9_000);
  assert.equal(t.session.checkIdle(18_999), false);
  assert.equal(t.session.checkIdle(19_000), true);
  assert.equal(t.closes[0]?.reason, 'idle');
  assert.equal(t.stats.closedIdle, 1);
  assert.equal(t.session.checkIdle(50_000), false, 'closed once');
});
