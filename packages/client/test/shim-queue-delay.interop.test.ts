// --max-queue-delay-ms on the shim's writer towards a Tor stream (issue 14, deliverable 3): when
// the stream stops taking data, app datagrams that waited too long are dropped and counted as
// stale instead of filling the byte bound; requests (control) still go; what goes is whole and
// in order, and fresh datagrams after the stall go at once. With 0, the byte bound drops instead.
// The "Tor" is a SOCKS5 stand-in on loopback that stops reading after CONNECT.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { FrameKind, MessageBuilder, MessageClass, Method, StreamFramer } from '@onionturn/protocol';
import { waitFor } from '@onionturn/testkit';
import { Shim, dropsOf, parseUpstream } from '../src/index.js';
import { captureLogger, stallingSocks } from './helpers.js';

const PAYLOAD = 1000; // a multiple of 4: no padding, so the byte count is exact
/** Datagrams sent once the stream moves again. */
const FRESH = 20;

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/**
 * An app sends `count` ChannelData datagrams of PAYLOAD bytes, one every `everyMs`, into a flow
 * whose Tor stream stopped reading, and a Refresh request in the middle; 300 ms later the stream
 * moves again; then FRESH more datagrams.
 */
async function stalledRun(maxQueueDelayMs: number, count: number, everyMs: number): Promise<{ shim: Shim; frames: number[]; requests: number; sent: number }> {
  const socks = await stallingSocks(cleanups);
  const upstream = parseUpstream('tcp://127.0.0.1:9');
  assert.ok(upstream.ok);
  const shim = new Shim({
    listen: { host: '127.0.0.1', port: 0 },
    servers: [upstream.value],
    socks: { host: '127.0.0.1', port: socks.port },
    logger: captureLogger().logger,
    maxQueueDelayMs,
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
  const datagram = (i: number): Buffer => {
    const d = Buffer.alloc(4 + PAYLOAD, i & 0xff);
    d.writeUInt16BE(0x4000, 0);
    d.writeUInt16BE(PAYLOAD, 2);
    d.writeUInt32BE(i, 4);
    return d;
  };
  app.send(new MessageBuilder(Method.Allocate, MessageClass.Request).build(), port, '127.0.0.1');
  const stalled = await socks.stream;
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    app.send(datagram(i), port, '127.0.0.1');
    if (i === count >> 1) app.send(new MessageBuilder(Method.Refresh, MessageClass.Request).build(), port, '127.0.0.1');
    const due = started + (i + 1) * everyMs;
    if (i % 8 === 7) while (performance.now() < due) await new Promise((r) => setTimeout(r, Math.max(1, due - performance.now())));
  }
  await new Promise((r) => setTimeout(r, 300));
  const frames: number[] = [];
  let requests = 0;
  const framer = new StreamFramer(
    (frame, kind) => {
      if (kind === FrameKind.Stun) {
        requests++;
        return;
      }
      assert.equal(frame.length, 4 + PAYLOAD);
      const n = frame.readUInt32BE(4);
      assert.ok(
        frame.subarray(8).every((b) => b === (n & 0xff)),
        `frame ${n} intact`,
      );
      frames.push(n);
    },
    { rfc5766Channels: true },
  );
  stalled.on('data', (c: Buffer) => assert.equal(framer.push(c), undefined));
  stalled.resume();
  const quiet = async (): Promise<void> => {
    let seen = -1;
    await waitFor(
      'the queued frames to arrive',
      () => {
        const still = frames.length === seen;
        seen = frames.length;
        return still;
      },
      15_000,
      300,
    );
  };
  await quiet();
  for (let i = count; i < count + FRESH; i++) {
    app.send(datagram(i), port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 2));
  }
  await quiet();
  for (let i = 1; i < frames.length; i++) assert.ok(frames[i]! > frames[i - 1]!, 'in order');
  return { shim, frames, requests, sent: count + FRESH };
}

test('a stalled Tor stream: stale datagrams are dropped and counted, not queued up to the byte bound; requests still go', async () => {
  // 4 MB/s for 4 s: beyond loopback's socket buffers (a few MB) and the 1 MiB bound.
  const { shim, frames, requests, sent } = await stalledRun(150, 16000, 0.25);
  const stale = shim.stats.queueDrops.stale;
  assert.ok(
    stale > 0,
    `stale datagrams counted (${frames.length} of ${sent} arrived, ${dropsOf(shim.stats)['no flow']} no flow, queue ${shim.stats.queueDropped})`,
  );
  assert.equal(dropsOf(shim.stats).stale, stale, 'in the drops /metrics and the status page show');
  assert.equal(shim.stats.backlogDropped, 0, 'the byte bound was never reached: the time bound came first');
  assert.equal(requests, 2, 'the Allocate and the Refresh (control) both went upstream');
  assert.ok(frames.length + stale <= sent);
  // (Not all the rest: on a busy machine the app's datagrams can overflow the shim's UDP socket.)
  assert.deepEqual(
    frames.slice(-FRESH),
    Array.from({ length: FRESH }, (_, i) => sent - FRESH + i),
    'the fresh datagrams after the stall',
  );
});

test('the same stall with --max-queue-delay-ms 0: the byte bound drops instead, nothing stale', async () => {
  const { shim } = await stalledRun(0, 16000, 0.25);
  assert.equal(shim.stats.queueDrops.stale, 0);
  assert.ok(shim.stats.backlogDropped > 0, 'the 1 MiB byte bound dropped');
});
