// TcpBatchWriter over real loopback TCP pairs: a lone message leaves at once; a burst in one turn
// leaves in one write at the turn's end, in order, padded as asked; a turn with one message ends
// the burst; big messages and grown batches keep their bytes; the bound drops; an ended or
// destroyed socket takes nothing; behind a slow reader messages gather instead of queueing a
// pooled buffer each. Over real TLS, each write is one record whose bytes on the wire fill whole
// Tor cells.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { COALESCE_FILL, QueueDrops, TcpBatchWriter, type MessageClass, type WriteGate } from '../src/index.js';

let server: Server;
const accepted: Socket[] = [];
const opened: Socket[] = [];

before(async () => {
  server = createServer((s) => accepted.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
});
after(async () => {
  for (const s of [...accepted, ...opened]) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

/** A connected pair; `writes` counts the writer side's socket.write calls; `received()` waits for n bytes. */
async function pair(): Promise<{ sock: Socket; peer: Socket; writes: () => number; received: (n: number) => Promise<Buffer> }> {
  const before = accepted.length;
  const sock = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port });
  opened.push(sock);
  await once(sock, 'connect');
  while (accepted.length === before) await new Promise((r) => setImmediate(r));
  const peer = accepted[before] as Socket;
  const chunks: Buffer[] = [];
  let have = 0;
  let waiting: (() => void) | undefined;
  peer.on('data', (c: Buffer) => {
    chunks.push(c);
    have += c.length;
    waiting?.();
  });
  let count = 0;
  const write = sock.write.bind(sock) as (...args: unknown[]) => boolean;
  sock.write = ((...args: unknown[]) => {
    count++;
    return write(...args);
  }) as typeof sock.write;
  const received = async (n: number): Promise<Buffer> => {
    while (have < n) await new Promise<void>((r) => (waiting = r));
    return Buffer.concat(chunks);
  };
  return { sock, peer, writes: () => count, received };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
/** Wide enough that a busy machine does not split a burst; pause() is longer. */
const GAP_MS = 100;
const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 2 * GAP_MS));

test('a lone message leaves at once; a burst from its second message on waits for the end of the turn', async () => {
  const { sock, writes, received } = await pair();
  const w = new TcpBatchWriter(sock, 1 << 20, GAP_MS);
  assert.ok(w.append(Buffer.from('abcde'), 5, 3));
  assert.equal(writes(), 1, 'no burst yet: written at once');
  assert.equal(w.batching, false);
  // Microseconds later, in the same turn: a burst.
  assert.ok(w.append(Buffer.from('XYZ-not-this'), 3, 1));
  const at = w.reserve(4);
  w.buffer.writeUInt32BE(0x01020304, at);
  w.commit();
  assert.equal(w.batching, true);
  assert.equal(w.batched, 8);
  assert.equal(writes(), 1, 'the rest of the burst waits');
  await turn();
  assert.equal(writes(), 2);
  assert.deepEqual(await received(16), Buffer.from([...Buffer.from('abcde'), 0, 0, 0, ...Buffer.from('XYZ'), 0, 1, 2, 3, 4]));
  // Still in the burst: the next turn's messages are batched from the first.
  for (const c of ['p', 'q', 'r']) w.append(Buffer.from(c));
  assert.equal(writes(), 2);
  await turn();
  assert.equal(writes(), 3);
  assert.equal((await received(19)).subarray(16).toString(), 'pqr');
  // A turn with one message ends the burst...
  w.append(Buffer.from('s'));
  await turn();
  assert.equal(writes(), 4);
  assert.equal(w.batching, false);
  // ...and after a pause a lone message leaves at once again.
  await pause();
  w.append(Buffer.from('t'));
  assert.equal(writes(), 5);
  assert.equal((await received(21)).subarray(19).toString(), 'st');
});

test('two sockets in a burst in one turn: two writes each (the first at once, the rest together)', async () => {
  const a = await pair();
  const b = await pair();
  const wa = new TcpBatchWriter(a.sock, 1 << 20, GAP_MS);
  const wb = new TcpBatchWriter(b.sock, 1 << 20, GAP_MS);
  for (let i = 0; i < 10; i++) {
    wa.append(Buffer.from([i]));
    wb.append(Buffer.from([100 + i]));
  }
  await turn();
  assert.equal(a.writes(), 2);
  assert.equal(b.writes(), 2);
  assert.deepEqual([...(await a.received(10))], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual([...(await b.received(10))], [100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
});

test('a batch grown past the pooled size and messages bigger than it keep every byte', async () => {
  const { sock, received } = await pair();
  const w = new TcpBatchWriter(sock, 1 << 20, GAP_MS);
  const small = Buffer.alloc(1000);
  for (let i = 0; i < 40; i++) w.append(small.fill(i));
  await turn();
  const got = await received(40_000);
  for (let i = 0; i < 40; i++) assert.equal(got[i * 1000 + 999], i);
  await pause();
  const big = Buffer.alloc(50_000, 7);
  assert.ok(w.append(big), 'a lone big one');
  assert.ok(w.append(Buffer.alloc(30_000, 8)), 'and a big one in a burst');
  await turn();
  const all = await received(120_000);
  assert.equal(all.length, 120_000);
  assert.ok(all.subarray(40_000, 90_000).every((x) => x === 7));
  assert.ok(all.subarray(90_000).every((x) => x === 8));
});

test('the bound: waiting bytes (batched plus Node queue) beyond it are dropped, not queued', async () => {
  const { sock, received } = await pair();
  const w = new TcpBatchWriter(sock, 100, GAP_MS);
  assert.ok(w.append(Buffer.alloc(10)));
  assert.ok(w.append(Buffer.alloc(60)), 'batched');
  assert.equal(w.append(Buffer.alloc(60)), false, 'over the bound in the same turn');
  assert.ok(w.append(Buffer.alloc(40)));
  assert.equal(w.reserve(1), -1);
  await turn();
  assert.equal((await received(110)).length, 110);
});

test('flush() before end writes what is batched; an ended or destroyed socket takes nothing', async () => {
  const { sock, writes, received } = await pair();
  const w = new TcpBatchWriter(sock, 1 << 20, GAP_MS);
  w.append(Buffer.from('last '));
  w.append(Buffer.from('words'));
  assert.equal(writes(), 1);
  w.flush();
  sock.end();
  assert.equal(writes(), 2);
  assert.equal(w.append(Buffer.from('after end')), false);
  await turn();
  assert.equal(writes(), 2, "the turn's flush finds nothing more");
  assert.equal((await received(10)).toString(), 'last words');
  const other = await pair();
  const w2 = new TcpBatchWriter(other.sock, 1 << 20, GAP_MS);
  w2.append(Buffer.from('sent'));
  w2.append(Buffer.from('lost'));
  other.sock.destroy();
  await turn();
  assert.equal(other.writes(), 1);
  assert.equal(w2.append(Buffer.from('x')), false);
});

test('behind a slow reader, messages gather into one write instead of pinning a pooled buffer each', async () => {
  const { sock, peer, writes, received } = await pair();
  peer.pause();
  // More than loopback's kernel buffers take: Node queues the rest, and what follows.
  const filler = Buffer.alloc(32 << 20, 1);
  sock.write(filler);
  assert.ok(sock.writableLength > 0, 'the socket is backed up');
  // A burst gap of 0: every message is a lone one, as paced audio is.
  const w = new TcpBatchWriter(sock, 64 << 20, 0);
  const firstWrite = writes();
  const arrayBuffersBefore = process.memoryUsage().arrayBuffers;
  const n = 1000;
  for (let i = 0; i < n; i++) {
    const m = Buffer.alloc(8);
    m.writeUInt32BE(i, 0);
    m.writeUInt32BE(i, 4);
    assert.ok(w.append(m));
    await turn();
  }
  const grown = process.memoryUsage().arrayBuffers - arrayBuffersBefore;
  // One write per message pinned 16 kB each here: 16 MB for 8 kB of messages.
  assert.ok(writes() - firstWrite <= 2, `${writes() - firstWrite} writes queued behind the slow reader`);
  assert.ok(grown < 4 << 20, `array buffers grew by ${grown} bytes for ${8 * n} bytes of messages`);
  peer.resume();
  const all = await received(filler.length + 8 * n);
  assert.equal(all.length, filler.length + 8 * n);
  for (let i = 0; i < n; i++) {
    const at = filler.length + 8 * i;
    assert.equal(all.readUInt32BE(at), i);
    assert.equal(all.readUInt32BE(at + 4), i);
  }
});

/** A gate that lets `allow` more bytes go, with a report due when `reportDue` (a 4-byte 'REPT'). */
class FakeGate implements WriteGate {
  allow = 0;
  reportDue = false;
  written = 0;
  holds = 0;
  /** What coalesceMs() answers. */
  coalesce = 0;
  coalesceMs(): number {
    return this.coalesce;
  }
  /** Bytes vital messages may take beyond `allow`. */
  vitalExtra = Infinity;
  mayWrite(_now: number, bytes: number, vital = false): boolean {
    return bytes <= this.allow + (vital ? this.vitalExtra : 0);
  }
  /** Each write's bytes (reports included). */
  writes: number[] = [];
  onWrite(_now: number, bytes: number): void {
    this.written += bytes;
    this.writes.push(bytes);
    // What went beyond `allow` (vital messages) used up the extra.
    if (bytes > this.allow) this.vitalExtra -= bytes - this.allow;
    this.allow = Math.max(0, this.allow - bytes);
  }
  /** The report's bytes. */
  report = Buffer.from('REPT');
  dueReportBytes(): number {
    return this.reportDue ? this.report.length : 0;
  }
  takeReport(): Buffer | undefined {
    if (!this.reportDue) return undefined;
    this.reportDue = false;
    return this.report;
  }
  onHold(): void {
    this.holds++;
  }
}

/** Messages starting with 'C' are our control messages (class 0), 'V' vital relayed ones (1), the rest droppable data (2). */
const dataClass = (b: Buffer, at: number, _n: number, out: MessageClass): void => {
  out.cls = b[at] === 0x43 ? 0 : b[at] === 0x56 ? 1 : 2;
  out.rtp = false;
};

/** A writer on a fresh pair with a time bound of `maxDelayMs`, `classify`, and a FakeGate. */
async function gated(
  maxDelayMs: number,
  classify: (b: Buffer, at: number, n: number, out: MessageClass) => void,
): Promise<{ w: TcpBatchWriter; gate: FakeGate; drops: QueueDrops; writes: () => number; received: (n: number) => Promise<Buffer> }> {
  const { sock, writes, received } = await pair();
  const drops = new QueueDrops();
  const w = new TcpBatchWriter(sock, 1 << 20, GAP_MS, { maxDelayMs, drops, classify });
  const gate = new FakeGate();
  w.gate = gate;
  return { w, gate, drops, writes, received };
}

test('a gate: what it does not allow waits in the batch until kick(); a due report goes ahead of the data in one write, or alone while data is held; our control messages are not held', async () => {
  const { w, gate, drops, writes, received } = await gated(10_000, dataClass);
  gate.allow = 8;
  gate.reportDue = true;
  assert.ok(w.append(Buffer.from('aaaa')));
  assert.equal(writes(), 2, 'allowed: written at once, the report and the data corked into one write(2)');
  assert.equal((await received(8)).toString(), 'REPTaaaa', 'the report first');
  assert.ok(w.append(Buffer.from('bbbb')));
  await turn();
  assert.equal(w.held, true, 'the cap is reached: held');
  assert.equal(gate.holds, 1);
  gate.reportDue = true;
  w.kick();
  assert.equal((await received(12)).toString(), 'REPTaaaaREPT', 'a report is never held: alone');
  gate.allow = 100;
  w.kick();
  assert.equal((await received(16)).toString(), 'REPTaaaaREPTbbbb', 'a report opened the cap: the held data goes');
  assert.equal(w.held, false);
  assert.equal(gate.written, 16, 'every byte written was counted by the gate');
  assert.equal(w.written, 16);
  // Held data behind which our own control message (class 0) comes: it goes, with what is ahead of it.
  await pause();
  gate.allow = 0;
  assert.ok(w.append(Buffer.from('dddd')));
  assert.equal(w.held, true);
  assert.ok(w.append(Buffer.from('CCCC')));
  await turn();
  assert.equal((await received(24)).toString(), 'REPTaaaaREPTbbbbddddCCCC', 'the control message was not held (nor reordered)');
  assert.equal(w.held, false);
  assert.equal(drops.stale, 0);
});

test('a gate holding data: the time bound drops it there, as it waits', async () => {
  const { w, gate, drops, received } = await gated(30, dataClass);
  gate.allow = 4;
  assert.ok(w.append(Buffer.from('aaaa')));
  assert.ok(w.append(Buffer.from('bbbb')));
  await turn();
  assert.equal(w.held, true);
  await pause();
  gate.allow = 100;
  assert.ok(w.append(Buffer.from('cccc')));
  w.kick();
  assert.equal((await received(8)).toString(), 'aaaacccc', 'the stale one was dropped, the fresh one went');
  assert.equal(drops.stale, 1);
});

test('a gate: vital relayed messages (ICE checks, DTLS handshake, RTCP) at the head are not held; behind held media they wait their turn', async () => {
  const { w, gate, drops, received } = await gated(10_000, dataClass);
  gate.allow = 4;
  assert.ok(w.append(Buffer.from('mmmm')));
  // The cap is used up: a setup's handshake flight still goes, in order.
  assert.ok(w.append(Buffer.from('V1V1')));
  assert.ok(w.append(Buffer.from('V2V2')));
  await turn();
  assert.equal(w.held, false, 'vital messages at the head were not held');
  assert.equal(gate.written, 12, 'and counted in flight');
  assert.equal((await received(12)).toString(), 'mmmmV1V1V2V2');
  // Media held: the vital message behind it waits (no reordering), until the cap opens.
  assert.ok(w.append(Buffer.from('nnnn')));
  assert.ok(w.append(Buffer.from('V3V3')));
  await turn();
  assert.equal(w.held, true);
  gate.allow = 100;
  w.kick();
  assert.equal((await received(20)).toString(), 'mmmmV1V1V2V2nnnnV3V3');
  assert.equal(drops.stale, 0);
  // Beyond the gate's looser bound for vital messages (RTCP into a full path) they are held too.
  gate.allow = 0;
  gate.vitalExtra = 4;
  await pause();
  assert.ok(w.append(Buffer.from('V4V4')));
  await turn();
  assert.equal(w.held, false, 'within the bound');
  assert.ok(w.append(Buffer.from('V5V5')));
  await turn();
  assert.equal(w.held, true, 'beyond it: held');
  gate.allow = 100;
  w.kick();
  assert.equal((await received(28)).toString(), 'mmmmV1V1V2V2nnnnV3V3V4V4V5V5');
});

test('a gate that says the path is the limit: small writes wait (up to its ms) to fill a Tor cell; a full enough cell or our control message goes at once', async () => {
  const { w, gate, drops, writes, received } = await gated(10_000, dataClass);
  gate.allow = 1 << 20;
  gate.coalesce = 3 * GAP_MS;
  const t0 = performance.now();
  assert.ok(w.append(Buffer.from('aaaa')));
  await turn();
  assert.equal(writes(), 0, 'a lone small message waits for company');
  await pause();
  assert.ok(w.append(Buffer.from('bbbb')));
  await turn();
  assert.equal(writes(), 0, 'two small messages still leave the cell mostly empty');
  assert.equal((await received(8)).toString(), 'aaaabbbb', 'both go in one write when the first has waited its time');
  assert.equal(writes(), 1);
  assert.ok(performance.now() - t0 >= 3 * GAP_MS - 1, 'not before the wait was over');
  // A cell filled enough: it goes at the end of the turn that filled it.
  assert.ok(w.append(Buffer.from('cccc')));
  await turn();
  assert.equal(writes(), 1);
  assert.ok(w.append(Buffer.alloc(COALESCE_FILL, 0x64)));
  await turn();
  assert.equal(writes(), 2, 'the fill was reached: written');
  assert.equal((await received(12 + COALESCE_FILL)).length, 12 + COALESCE_FILL);
  // A cell and a bit: the whole cell goes at once; the bit's cell would be mostly empty, so that
  // part of the message waits (the stream is then inside it); our control message ends the wait,
  // and a due report goes behind the message's tail, not inside it.
  assert.ok(w.append(Buffer.alloc(498 + 8, 0x65)));
  await turn();
  assert.equal(writes(), 3, 'the whole cell was written');
  assert.equal((await received(12 + COALESCE_FILL + 498)).length, 12 + COALESCE_FILL + 498, 'exactly that cell');
  await turn();
  assert.equal(writes(), 3, 'the last 8 bytes wait for more');
  gate.reportDue = true;
  assert.ok(w.append(Buffer.from('CCCC')));
  await turn();
  assert.equal(writes(), 6, 'our control message does not wait: the tail, the report and it, corked');
  const all = await received(12 + COALESCE_FILL + 506 + 4 + 4);
  assert.equal(all.subarray(12 + COALESCE_FILL).toString('latin1'), 'e'.repeat(506) + 'REPTCCCC', 'the message whole, then the report, then what came after');
  // The path has room again: a lone message goes at once.
  gate.coalesce = 0;
  await pause();
  assert.ok(w.append(Buffer.from('ffff')));
  assert.equal(writes(), 7);
  assert.equal(drops.stale, 0);
  assert.equal(gate.written, 12 + COALESCE_FILL + 506 + 12, 'every byte counted by the gate');
});

test('a gate that says the path is the limit: a stream of large messages goes in whole Tor cells, each message whole at the receiver, reports never inside one', async () => {
  const { w, gate, drops, writes, received } = await gated(10_000, dataClass);
  gate.allow = 1 << 20;
  gate.coalesce = 3 * GAP_MS;
  const sizes = [1150, 1200, 90, 1100, 300, 1180];
  const sent: Buffer[] = [];
  for (let k = 0; k < sizes.length; k++) {
    const m = Buffer.alloc(sizes[k] as number, 0x61 + k);
    sent.push(m);
    gate.reportDue = true;
    assert.ok(w.append(m));
    await turn();
  }
  // Everything but the last cell's bytes went at once, in whole cells (reports included); the
  // rest when its wait was over.
  await turn();
  const early = gate.writes.length;
  assert.ok(early >= 3, `${early} writes`);
  for (const n of gate.writes) {
    assert.ok(n % 498 === 0 || n % 498 >= COALESCE_FILL, `a write of ${n} bytes: whole cells, or a last one full enough (${gate.writes.join(', ')})`);
  }
  await pause();
  await pause();
  assert.equal(gate.writes.length, early + 1, 'the last bytes in one write of their own, after their wait');
  const all = await received(gate.written);
  // Reports ('REPT') sit only between messages: taking them out leaves the messages in order.
  let at = 0;
  let reports = 0;
  for (const m of sent) {
    while (all.toString('latin1', at, at + 4) === 'REPT') {
      at += 4;
      reports++;
    }
    assert.ok(all.subarray(at, at + m.length).equals(m), `message of ${m.length} bytes at ${at} whole`);
    at += m.length;
  }
  while (all.toString('latin1', at, at + 4) === 'REPT') {
    at += 4;
    reports++;
  }
  assert.equal(at, all.length);
  assert.ok(reports >= 1);
  assert.ok(writes() >= 2);
  assert.equal(drops.stale, 0);
});

test('a gate holding data back on a path that is the limit: what it lets go goes in whole cells too, the rest of a message next', async () => {
  const { w, gate, drops, received } = await gated(10_000, dataClass);
  gate.coalesce = 3 * GAP_MS;
  gate.allow = 700;
  const a = Buffer.alloc(600, 0x61);
  const b = Buffer.alloc(600, 0x62);
  assert.ok(w.append(a));
  assert.ok(w.append(b));
  await turn();
  assert.deepEqual(gate.writes, [498], 'the cap let the first message go (not the second): its whole cell went');
  assert.equal(w.held, true);
  assert.equal((await received(498)).length, 498);
  // The cap opens: the first message's last 102 bytes and the second's first 396 make a cell.
  gate.allow = 10_000;
  w.kick();
  await turn();
  assert.deepEqual(gate.writes, [498, 498]);
  await pause();
  await pause();
  assert.deepEqual(gate.writes, [498, 498, 204], 'the last bytes after their wait');
  assert.ok((await received(1200)).equals(Buffer.concat([a, b])));
  assert.equal(drops.stale, 0);
});

test('a gate on a path that is the limit: a tail within a report of a whole cell goes whole, the report behind it', async () => {
  const { w, gate, received } = await gated(10_000, dataClass);
  gate.allow = 1 << 20;
  gate.coalesce = 3 * GAP_MS;
  assert.ok(w.append(Buffer.alloc(498 + 300, 0x61)));
  await turn();
  assert.deepEqual(gate.writes, [498], 'a cell of it; 300 bytes wait');
  // A report due of 200 bytes: a whole cell would end 2 bytes before the message does.
  gate.report = Buffer.alloc(200, 0x52);
  gate.reportDue = true;
  assert.ok(w.append(Buffer.alloc(10, 0x62)));
  await turn();
  await pause();
  await pause();
  const all = await received(gate.written);
  assert.equal(all.toString('latin1'), 'a'.repeat(798) + 'R'.repeat(200) + 'b'.repeat(10));
});

/** 'W…' is a video packet (large, RTP, SSRC 2), 'A…' an audio packet (small, RTP, SSRC 1), as in dataClass otherwise. */
const mediaClass = (b: Buffer, at: number, n: number, out: MessageClass): void => {
  dataClass(b, at, n, out);
  const c = b[at];
  if (c === 0x57 || c === 0x41) {
    out.cls = c === 0x57 ? 3 : 2;
    out.rtp = true;
    out.ssrc = c === 0x57 ? 2 : 1;
    out.timestamp = 0;
  }
};

test('a gate: audio (small RTP packets) takes the looser bound of vital messages, video does not', async () => {
  const { w, gate, drops, received } = await gated(10_000, mediaClass);
  gate.allow = 0;
  gate.vitalExtra = 4;
  assert.ok(w.append(Buffer.from('A1A1')));
  await turn();
  assert.equal(w.held, false, 'audio beyond the cap, within the looser bound: not held');
  assert.equal((await received(4)).toString(), 'A1A1');
  gate.vitalExtra = 100;
  assert.ok(w.append(Buffer.from('WWWWWWWW')));
  await turn();
  assert.equal(w.held, true, 'video beyond the cap: held, however much room the looser bound has');
  gate.allow = 100;
  w.kick();
  assert.equal((await received(12)).toString(), 'A1A1WWWWWWWW');
  assert.equal(drops.stale, 0);
});

test('a gate holding video back: the audio behind it goes first, the video waits its turn', async () => {
  const { w, gate, drops, received } = await gated(10_000, mediaClass);
  gate.allow = 4;
  assert.ok(w.append(Buffer.from('aaaa')));
  await turn();
  // The cap is used up; a video packet, then audio.
  assert.ok(w.append(Buffer.from('WWWWWWWW')));
  assert.ok(w.append(Buffer.from('A1A1')));
  await turn();
  assert.equal(w.held, true, 'the video is held');
  gate.allow = 4;
  w.kick();
  // (Bounded: behind the video, the audio would never come.)
  const first = await Promise.race([received(8), new Promise<Buffer>((r) => setTimeout(() => r(Buffer.from('nothing in 2 s')), 2000))]);
  assert.equal(first.toString(), 'aaaaA1A1', 'room for the audio: it went ahead of the video');
  assert.equal(w.held, true);
  gate.allow = 100;
  w.kick();
  assert.equal((await received(16)).toString(), 'aaaaA1A1WWWWWWWW', 'then the video');
  assert.equal(w.held, false);
  assert.equal(drops.stale, 0);
});

test('a gate holding video back: vital messages behind it (RTCP) go first too, in order with the audio', async () => {
  const { w, gate, drops, received } = await gated(10_000, mediaClass);
  gate.allow = 4;
  assert.ok(w.append(Buffer.from('aaaa')));
  await turn();
  // The cap is used up; a video packet, then RTCP and audio.
  assert.ok(w.append(Buffer.from('WWWWWWWW')));
  assert.ok(w.append(Buffer.from('V1V1')));
  assert.ok(w.append(Buffer.from('A1A1')));
  await turn();
  assert.equal(w.held, true, 'the video is held');
  const first = await Promise.race([received(12), new Promise<Buffer>((r) => setTimeout(() => r(Buffer.from('nothing in 2 s')), 2000))]);
  assert.equal(first.toString(), 'aaaaV1V1A1A1', 'RTCP and audio went ahead of the video');
  gate.allow = 100;
  w.kick();
  assert.equal((await received(20)).toString(), 'aaaaV1V1A1A1WWWWWWWW', 'then the video');
  assert.equal(drops.stale, 0);
});

/** A key and self-signed certificate made for this test only (openssl, P-256, valid to 2126). */
const TEST_KEY = [
  '-----BEGIN PRIVATE KEY-----',
  'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNN79LW8J+zMLmThC',
  'k2gPWKWq+cjls9EI81UwJ+y7k4ahRANCAAQI7wsgG2LSt1Q1C7tjmZDv/3PW6338',
  'Z+PPOlmDajv8x2BeeiGBw1SS+Zct9xnDgYVbP2BW/LSYirBsRduz+k+h',
  '-----END PRIVATE KEY-----',
].join('\n');
const TEST_CERT = [
  '-----BEGIN CERTIFICATE-----',
  'MIIBljCCAT2gAwIBAgIUZRpmV8SCxVnMjBbep+P2hu4FlvIwCgYIKoZIzj0EAwIw',
  'IDEeMBwGA1UEAwwVdGNwLWJhdGNoLXdyaXRlci50ZXN0MCAXDTI2MTIwNzA2MjQy',
  'N1oYDzIxMjYxMTEzMDYyNDI3WjAgMR4wHAYDVQQDDBV0Y3AtYmF0Y2gtd3JpdGVy',
  'LnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQI7wsgG2LSt1Q1C7tjmZDv',
  '/3PW6338Z+PPOlmDajv8x2BeeiGBw1SS+Zct9xnDgYVbP2BW/LSYirBsRduz+k+h',
  'o1MwUTAdBgNVHQ4EFgQUxGe5NUsDpWM3y3uF3fJhFO6MibkwHwYDVR0jBBgwFoAU',
  'xGe5NUsDpWM3y3uF3fJhFO6MibkwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD',
  'AgNHADBEAiAkfteEwthgx6ftuDj6gdoIUzZSUapIkXuoKYVDeRELSQIgQgaa5HUk',
  'I9Lbu3WTJE5W7D25vfE7OuijQ3QEJobmp2k=',
  '-----END CERTIFICATE-----',
].join('\n');

/**
 * A TLS connection on loopback through a relay that keeps every byte the client sends: the TLS
 * records as tor would read them from the stream. `records()`: the sizes of the records sent
 * after the handshake, header included.
 */
async function tlsPair(maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<{ sock: TLSSocket; records: () => number[]; close: () => void }> {
  const tlsServer = createTlsServer({ key: TEST_KEY, cert: TEST_CERT, maxVersion }, (s) => s.resume());
  tlsServer.listen(0, '127.0.0.1');
  await once(tlsServer, 'listening');
  let raw = Buffer.alloc(0);
  const relay = createServer((c) => {
    const up = connect({ host: '127.0.0.1', port: (tlsServer.address() as { port: number }).port });
    c.on('data', (d: Buffer) => {
      raw = Buffer.concat([raw, d]);
      up.write(d);
    });
    up.pipe(c);
    c.on('close', () => up.destroy());
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  const sock = tlsConnect({ host: '127.0.0.1', port: (relay.address() as { port: number }).port, rejectUnauthorized: false });
  await once(sock, 'secureConnect');
  // The client's last handshake flight may still be on its way: what the relay has after a pause is handshake.
  await pause();
  const mark = raw.length;
  const records = (): number[] => {
    const out: number[] = [];
    for (let p = mark; p + 5 <= raw.length; p += 5 + raw.readUInt16BE(p + 3)) out.push(5 + raw.readUInt16BE(p + 3));
    return out;
  };
  const close = (): void => {
    sock.destroy();
    relay.close();
    tlsServer.close();
  };
  return { sock, records, close };
}

for (const [version, overhead] of [
  ['TLSv1.3', 22],
  ['TLSv1.2', 29],
] as const) {
  test(`over real TLS (${version}) on a path that is the limit: each write is one record of whole Tor cells on the wire (${overhead} bytes of record overhead counted)`, async (t) => {
    const { sock, records, close } = await tlsPair(version);
    t.after(close);
    assert.equal(sock.getProtocol(), version);
    const drops = new QueueDrops();
    const w = new TcpBatchWriter(sock, 1 << 20, GAP_MS, { maxDelayMs: 10_000, drops, classify: dataClass });
    const gate = new FakeGate();
    w.gate = gate;
    gate.allow = 1 << 20;
    gate.coalesce = 3 * GAP_MS;
    const sizes = [1150, 1200, 90, 1100, 300, 1180, 700, 1200];
    for (let k = 0; k < sizes.length; k++) {
      gate.reportDue = k % 3 === 0;
      assert.ok(w.append(Buffer.alloc(sizes[k] as number, 0x61 + k)));
      await turn();
    }
    await pause();
    await pause();
    await pause();
    const sent = records();
    // One record per write (a corked write of tail, report and rest too), each write's data plus the overhead.
    assert.deepEqual(
      sent,
      gate.writes.map((n) => n + overhead),
      `records ${sent.join(', ')} for writes ${gate.writes.join(', ')}`,
    );
    // All but the last write (the last cell's bytes, when their wait ended) fill whole cells on the wire.
    for (const n of sent.slice(0, -1)) {
      assert.ok(n % 498 === 0 || n % 498 >= COALESCE_FILL, `a record of ${n} bytes: whole cells, or a last one full enough (${sent.join(', ')})`);
    }
    assert.ok(sent.filter((n) => n % 498 === 0).length >= 3, `whole cells: ${sent.join(', ')}`);
    assert.equal(drops.stale, 0);
  });
}
