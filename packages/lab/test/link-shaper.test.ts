// The shaper's scheduling core with a fake clock: delay, jitter without reordering, the shared
// bottleneck's rate, stalls, and segmenting; then the socket shell on loopback (no Tor), whose
// measured delay and rate must be within 20% of the shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import {
  Bottleneck,
  DelayLine,
  SEGMENT_BYTES,
  ShapedLink,
  StallSchedule,
  seededRandom,
  startShapingProxy,
  startEchoServer,
  LAB_PROFILES,
  labProfile,
} from '../src/index.js';

test('delay line: fixed delay, no rate limit', () => {
  const link = new ShapedLink({ delayMs: 40 });
  const line = new DelayLine(link, link.up);
  assert.equal(line.push(1000, Buffer.from('abc')), 1040);
  assert.deepEqual(line.due(1039), []);
  assert.equal(line.nextAt(), 1040);
  assert.deepEqual(line.due(1040).map(String), ['abc']);
  assert.equal(line.nextAt(), undefined);
  assert.equal(line.queuedBytes, 0);
});

test('delay line: jitter spreads delays within +-jitter and never reorders bytes', () => {
  const link = new ShapedLink({ delayMs: 40, jitterMs: 10 }, 7);
  const line = new DelayLine(link, link.up);
  let last = -Infinity;
  const delays: number[] = [];
  for (let t = 0; t < 1000; t += 1) {
    const at = line.push(t, Buffer.from([t & 0xff]));
    assert.ok(at >= last, 'delivery times are monotone');
    last = at;
    delays.push(at - t);
  }
  assert.ok(Math.min(...delays) >= 30 - 1e-9, `min ${Math.min(...delays)}`);
  assert.ok(Math.max(...delays) <= 50 + 1e-9, `max ${Math.max(...delays)}`);
  const out = Buffer.concat(line.due(Infinity));
  assert.equal(out.length, 1000);
  for (let i = 0; i < 1000; i++) assert.equal(out[i], i & 0xff);
});

test('bottleneck: rate is kbit/s, FIFO, shared by the connections of a link', () => {
  const b = new Bottleneck(800); // 100 bytes per ms
  assert.equal(b.transmit(0, 1000), 10);
  assert.equal(b.transmit(0, 1000), 20);
  assert.equal(b.backlogMs(5), 15);
  assert.equal(b.transmit(100, 100), 101);
  const link = new ShapedLink({ delayMs: 10, rateKbps: 8000 }); // 1000 bytes/ms
  const one = new DelayLine(link, link.up);
  const two = new DelayLine(link, link.up);
  const other = new DelayLine(link, link.down);
  assert.ok(Math.abs(one.push(0, Buffer.alloc(10_000)) - 20) < 1e-9);
  assert.ok(Math.abs(two.push(0, Buffer.alloc(10_000)) - 30) < 1e-9, 'second connection waits behind the first');
  assert.ok(Math.abs(other.push(0, Buffer.alloc(10_000)) - 20) < 1e-9, 'the other direction has its own bottleneck');
  assert.throws(() => new Bottleneck(0));
});

test('delay line: large writes leave in segments at the bottleneck rate', () => {
  const link = new ShapedLink({ delayMs: 0, rateKbps: 8 * SEGMENT_BYTES }); // one segment per ms
  const line = new DelayLine(link, link.up);
  line.push(0, Buffer.alloc(SEGMENT_BYTES * 4));
  assert.equal(line.due(1).length, 1);
  assert.equal(line.due(2).length, 1);
  assert.equal(Buffer.concat(line.due(4)).length, SEGMENT_BYTES * 2);
  assert.ok(link.pauseAboveMs() >= 16_384 / SEGMENT_BYTES);
});

test('stalls: bytes due inside a stall window leave at its end; gaps average meanEveryMs', () => {
  const s = new StallSchedule({ meanEveryMs: 1000, forMs: 200 }, seededRandom(3));
  const first = (s.release(0), s.windows()[0]!);
  assert.equal(s.release(first.start + 1), first.end);
  assert.equal(s.release(first.end), first.end);
  assert.equal(s.release(first.start - 0.001), first.start - 0.001);
  s.release(10_000_000);
  assert.ok(s.drawn > 8000 && s.drawn < 12000, `${s.drawn} windows in 10000 s`);
  assert.ok(s.windows().length < 100, 'old windows are forgotten');
  assert.equal(new StallSchedule(undefined, seededRandom(1)).release(5), 5);
  const link = new ShapedLink({ delayMs: 10, stall: { meanEveryMs: 50, forMs: 100 } }, 5);
  const line = new DelayLine(link, link.up);
  let stalled = 0;
  for (let t = 0; t < 2000; t += 10) if (line.push(t, Buffer.from('x')) - t > 10 + 1e-9) stalled++;
  assert.ok(stalled > 20, `some sends were held by stalls (${stalled})`);
});

test('profiles: names, and the exit-path round trip the typical links add', () => {
  assert.deepEqual(Object.keys(LAB_PROFILES).sort(), ['ideal', 'tor-congested', 'tor-onion', 'tor-typical']);
  assert.equal(labProfile('ideal').link, undefined);
  const typical = labProfile('tor-typical').link!;
  assert.ok(Math.abs(6 * typical.delayMs + 8 - 250) <= 25, 'three shaped links, both ways, ~250 ms');
  assert.equal(labProfile('tor-typical').relayRateKbps, 4000);
  assert.deepEqual(labProfile('tor-congested').bottleneck, { rateKbps: 600, queueMs: 200 }, 'a 600 kbit/s relay with a 200 ms queue');
  assert.equal(labProfile('tor-congested').link?.rateKbps, undefined, 'the router limits the rate, not the proxies');
  assert.ok(labProfile('tor-congested').namespace, 'in a namespace with small TCP buffers (where the congested relay namespaces are made)');
  for (const p of Object.values(LAB_PROFILES)) if (p.bottleneck) assert.ok(p.namespace, `${p.name}: a bottleneck only in a namespace of its own`);
  assert.equal(labProfile('tor-congested').bulkDownload, true);
  assert.equal(labProfile('tor-onion').onion, true);
  assert.throws(() => labProfile('nope'), /known: ideal/);
});

async function echoRtt(socket: Socket): Promise<number> {
  const t = performance.now();
  socket.write('p');
  await once(socket, 'data');
  return performance.now() - t;
}

test('shaping proxy on loopback: measured delay and rate within 20% of the shape', async (t) => {
  const echo = await startEchoServer();
  t.after(() => echo.close());
  // Delay: an echo through the proxy crosses it twice.
  const delayed = await startShapingProxy({ shape: { delayMs: 40, jitterMs: 5 }, targetPort: echo.port });
  t.after(() => delayed.close());
  const s = connect({ host: '127.0.0.1', port: delayed.port });
  t.after(() => s.destroy());
  s.setNoDelay(true);
  await once(s, 'connect');
  const rtts: number[] = [];
  for (let i = 0; i < 10; i++) rtts.push(await echoRtt(s));
  rtts.sort((x, y) => x - y);
  const rtt = rtts[5]!;
  t.diagnostic(`echo RTT through a 40 ms link: median ${rtt.toFixed(1)} ms`);
  assert.ok(Math.abs(rtt - 80) <= 16, `RTT ${rtt} ms, expected 80 +- 20%`);

  // Rate: one-way bulk through a 600 kbit/s and a 4 Mbit/s link into a counting sink.
  let sunk = 0;
  let firstAt = 0;
  let lastAt = 0;
  const sink: Server = createServer((c) => {
    c.on('data', (d: Buffer) => {
      if (sunk === 0) firstAt = performance.now();
      sunk += d.length;
      lastAt = performance.now();
    });
    c.on('error', () => c.destroy());
  });
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  t.after(() => new Promise<void>((r) => sink.close(() => r())));
  for (const rateKbps of [600, 4000]) {
    const limited = await startShapingProxy({ shape: { delayMs: 5, rateKbps }, targetPort: (sink.address() as { port: number }).port });
    const bytes = Math.round((rateKbps * 1000) / 8); // one second's worth
    sunk = 0;
    const c = connect({ host: '127.0.0.1', port: limited.port });
    await once(c, 'connect');
    const t0 = performance.now();
    c.end(Buffer.alloc(bytes));
    while (sunk < bytes) {
      await new Promise((r) => setTimeout(r, 20));
      assert.ok(performance.now() - t0 < 5000, `only ${sunk} of ${bytes} bytes after 5 s`);
    }
    const kbps = ((bytes - SEGMENT_BYTES) * 8) / (lastAt - firstAt);
    t.diagnostic(`${rateKbps} kbit/s link: measured ${kbps.toFixed(0)} kbit/s`);
    assert.ok(Math.abs(kbps - rateKbps) <= rateKbps * 0.2, `rate ${kbps} kbit/s, expected ${rateKbps} +- 20%`);
    c.destroy();
    await limited.close();
  }
});

test('shaping proxy: a receiver that stops reading stops the proxy reading (bounded buffers), nothing lost', async (t) => {
  let received = 0;
  let receiver: Socket | undefined;
  const sink: Server = createServer((c) => {
    receiver = c;
    c.pause();
    c.on('data', (d: Buffer) => (received += d.length));
    c.on('error', () => c.destroy());
  });
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  t.after(() => {
    receiver?.destroy();
    return new Promise<void>((r) => sink.close(() => r()));
  });
  const proxy = await startShapingProxy({ shape: { delayMs: 5 }, targetPort: (sink.address() as { port: number }).port });
  t.after(() => proxy.close());
  const c = connect({ host: '127.0.0.1', port: proxy.port });
  t.after(() => c.destroy());
  await once(c, 'connect');
  const total = 32 * 1024 * 1024;
  const block = Buffer.alloc(1024 * 1024, 1);
  let written = 0;
  const writeMore = (): void => {
    while (written < total) {
      written += block.length;
      if (!c.write(block)) return;
    }
  };
  c.on('drain', writeMore);
  writeMore();
  await new Promise((r) => setTimeout(r, 1000));
  const q = proxy.queues();
  t.diagnostic(`receiver paused: proxy holds ${q.queuedBytes} B in its delay line and ${q.writeBufferedBytes} B in write buffers`);
  assert.ok(q.queuedBytes + q.writeBufferedBytes < 1024 * 1024, JSON.stringify(q));
  receiver!.resume();
  for (let i = 0; i < 300 && received < total; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(received, total);
});

test('shaping proxy: the bottleneck queue stays bounded in time; the sender is held back instead', async (t) => {
  // A sender far faster than a 4 Mbit/s link with a 50 ms queue: the proxy stops reading above
  // it, so what waits in the proxy stays near 50 ms (plus at most one read, <= 64 KiB) however
  // much is sent, and the rest waits in the sender; everything arrives, in order, at the rate.
  let sunk = 0;
  let firstAt = 0;
  let lastAt = 0;
  let inOrder = true;
  const sink: Server = createServer((c) => {
    c.on('data', (d: Buffer) => {
      if (sunk === 0) firstAt = performance.now();
      for (let i = 0; i < d.length; i += 997) if (d[i] !== (sunk + i) % 251) inOrder = false;
      sunk += d.length;
      lastAt = performance.now();
    });
    c.on('error', () => c.destroy());
  });
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  t.after(() => new Promise<void>((r) => sink.close(() => r())));
  const rateKbps = 4000;
  const queueMs = 50;
  const proxy = await startShapingProxy({ shape: { delayMs: 5, rateKbps, queueMs }, targetPort: (sink.address() as { port: number }).port });
  t.after(() => proxy.close());
  const c = connect({ host: '127.0.0.1', port: proxy.port });
  t.after(() => c.destroy());
  await once(c, 'connect');
  const bytes = 1_000_000; // 2 s at the rate
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) data[i] = i % 251;
  c.end(data);
  let maxBacklogMs = 0;
  const t0 = performance.now();
  while (sunk < bytes) {
    maxBacklogMs = Math.max(maxBacklogMs, proxy.queues().upBacklogMs);
    await new Promise((r) => setTimeout(r, 5));
    assert.ok(performance.now() - t0 < 10_000, `only ${sunk} of ${bytes} bytes after 10 s`);
  }
  const oneReadMs = (64 * 1024 * 8) / rateKbps;
  const kbps = ((bytes - SEGMENT_BYTES) * 8) / (lastAt - firstAt);
  t.diagnostic(
    `most queued in the proxy: ${maxBacklogMs.toFixed(0)} ms (bound ${queueMs} ms + one read ${oneReadMs.toFixed(0)} ms); rate ${kbps.toFixed(0)} kbit/s`,
  );
  assert.ok(maxBacklogMs <= queueMs + oneReadMs, `the proxy queued ${maxBacklogMs.toFixed(0)} ms, more than ${queueMs} ms + one read`);
  assert.ok(maxBacklogMs >= queueMs / 2, `the link was never full (${maxBacklogMs.toFixed(0)} ms queued)`);
  assert.ok(Math.abs(kbps - rateKbps) <= rateKbps * 0.2, `rate ${kbps} kbit/s, expected ${rateKbps} +- 20%`);
  assert.ok(inOrder, 'bytes arrived in order');
  assert.equal(sunk, bytes);
});
