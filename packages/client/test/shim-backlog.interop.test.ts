// A Tor stream slower than the app: the shim drops datagrams beyond its backlog bound and counts
// them (UDP semantics) instead of buffering without limit, and what it does send is intact and in
// order once the stream moves again (batch buffers are reused: a reuse too early would show here
// as damaged frames). The "Tor" is a SOCKS5 stand-in on loopback that stops reading after CONNECT.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { FrameKind, MessageBuilder, MessageClass, Method, StreamFramer } from '@onionturn/protocol';
import { waitFor } from '@onionturn/testkit';
import { Shim, parseUpstream } from '../src/index.js';
import { captureLogger, stallingSocks } from './helpers.js';

const PAYLOAD = 1000; // a multiple of 4: no padding, so the byte count is exact
const SENT = 20_000; // 20 MB: more than loopback's socket buffers take before Node queues
const BACKLOG = 64 * 1024;

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('a stalled upstream: datagrams beyond the backlog bound are dropped and counted; the rest arrive whole and in order', async () => {
  const socks = await stallingSocks(cleanups);
  const upstream = parseUpstream('tcp://127.0.0.1:9');
  assert.ok(upstream.ok);
  const shim = new Shim({
    listen: { host: '127.0.0.1', port: 0 },
    servers: [upstream.value],
    socks: { host: '127.0.0.1', port: socks.port },
    logger: captureLogger().logger,
    maxUpstreamBacklog: BACKLOG,
    tcp: false,
  });
  await shim.start();
  cleanups.push(() => shim.stop());
  const app = createSocket('udp4');
  cleanups.push(() => {
    app.close();
  });
  await new Promise<void>((r) => app.bind(0, '127.0.0.1', r));
  const port = shim.address.port;

  // A request opens the flow; then ChannelData numbered 0..SENT-1 on channel 0x4000.
  const request = new MessageBuilder(Method.Allocate, MessageClass.Request).build();
  app.send(request, port, '127.0.0.1');
  const stalled = await socks.stream;
  for (let i = 0; i < SENT; i++) {
    const d = Buffer.alloc(4 + PAYLOAD, i & 0xff);
    d.writeUInt16BE(0x4000, 0);
    d.writeUInt16BE(PAYLOAD, 2);
    d.writeUInt32BE(i, 4);
    await new Promise<void>((r) => app.send(d, port, '127.0.0.1', () => r()));
    // Let the shim read now and then, so that its UDP receive buffer does not overflow.
    if (i % 32 === 31) await new Promise((r) => setImmediate(r));
  }
  await waitFor('the shim to drop datagrams beyond the bound', () => shim.stats.backlogDropped > 0, 10_000, 20);

  // The stream moves again: every frame whole, numbered upwards, its bytes its own.
  let frames = 0;
  let last = -1;
  let stun = 0;
  const framer = new StreamFramer(
    (frame, kind) => {
      if (kind === FrameKind.Stun) {
        stun++;
        return;
      }
      assert.equal(frame.length, 4 + PAYLOAD);
      const n = frame.readUInt32BE(4);
      assert.ok(n > last, `frame ${n} after ${last}`);
      assert.ok(
        frame.subarray(8).every((b) => b === (n & 0xff)),
        `frame ${n} intact`,
      );
      last = n;
      frames++;
    },
    { rfc5766Channels: true },
  );
  stalled.on('data', (c: Buffer) => assert.equal(framer.push(c), undefined));
  stalled.resume();
  // Until nothing more comes for half a second.
  let seen = -1;
  await waitFor(
    'the queued frames to arrive',
    () => {
      const still = frames === seen && frames > 0;
      seen = frames;
      return still;
    },
    15_000,
    500,
  );
  assert.equal(stun, 1, 'the Allocate, first');
  // Read once everything arrived: the shim has read every datagram by then, so the count is final.
  const dropped = shim.stats.backlogDropped;
  assert.ok(dropped > 0, 'some datagrams dropped');
  assert.ok(dropped < SENT, 'and some sent');
  // Nothing beyond the bound was queued: what arrived is what was not dropped (less any the
  // kernel dropped before the shim read them).
  assert.ok(frames + dropped <= SENT, `${frames} arrived + ${dropped} dropped <= ${SENT}`);
  assert.ok(frames * (4 + PAYLOAD) > BACKLOG, 'the socket buffers and the backlog were used');
});
