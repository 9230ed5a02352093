// TimedQueue on a fake clock (times are plain numbers): an uncongested queue loses nothing; a
// stale head goes; control and vital frames never go; large frames go before small ones once the
// queue stands above target; a dropped video frame goes whole; the survivors keep their bytes,
// in order; counters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FINISH_MS, QueueDrops, TimedQueue } from '../src/index.js';

const CONTROL = 0;
const VITAL = 1;
const SMALL = 2;
const LARGE = 3;

interface Frame {
  id: number;
  at: number;
  cls: number;
  len?: number;
  rtp?: { ssrc: number; ts: number };
}

/** A queue holding `frames` (each `len` bytes of its id) in one buffer, as a writer's batch. */
function queued(frames: Frame[], maxDelayMs = 150): { q: TimedQueue; buf: Buffer; end: number; drops: QueueDrops } {
  const drops = new QueueDrops();
  const q = new TimedQueue({ maxDelayMs, drops });
  const buf = Buffer.alloc(64 * 1024);
  let end = 0;
  for (const f of frames) {
    const len = f.len ?? (f.cls === LARGE ? 1000 : 100);
    buf.fill(f.id, end, end + len);
    q.push(f.at, end, len, f.cls, f.rtp !== undefined, f.rtp?.ssrc ?? 0, f.rtp?.ts ?? 0);
    end += len;
  }
  return { q, buf, end, drops };
}

/** The ids left in `buf[0, end)`, one per frame (runs of the same byte). */
function ids(buf: Buffer, end: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < end; i++) if (i === 0 || buf[i] !== buf[i - 1]) out.push(buf[i] as number);
  return out;
}

test('an uncongested queue drops nothing: every frame younger than target', () => {
  const frames: Frame[] = [];
  for (let i = 0; i < 40; i++) frames.push({ id: i + 1, at: i, cls: i % 2 ? LARGE : SMALL });
  const { q, buf, end, drops } = queued(frames);
  assert.equal(q.targetMs, 50);
  // At 49 the oldest (queued at 0) has waited under target.
  const left = q.shed(49, buf, end);
  assert.equal(left, end);
  assert.equal(q.count, 40);
  assert.equal(drops.stale, 0);
  assert.equal(q.due(49), false);
  assert.equal(q.due(51), true);
});

test('a burst above target for less than an interval keeps everything (a key frame passes)', () => {
  const { q, buf, end, drops } = queued([
    { id: 1, at: 0, cls: LARGE },
    { id: 2, at: 0, cls: LARGE },
    { id: 3, at: 10, cls: SMALL },
  ]);
  assert.equal(q.shed(60, buf, end), end);
  assert.equal(q.standing, false);
  assert.equal(q.shed(149, buf, end), end); // still under the budget, and under an interval above target
  assert.equal(drops.stale, 0);
});

test('a stale head goes: every droppable frame older than the budget, the rest stays in order', () => {
  const { q, buf, end, drops } = queued([
    { id: 1, at: 0, cls: SMALL },
    { id: 2, at: 5, cls: LARGE },
    { id: 3, at: 100, cls: SMALL },
    { id: 4, at: 190, cls: LARGE },
  ]);
  const left = q.shed(160, buf, end);
  assert.deepEqual(ids(buf, left), [3, 4]);
  assert.equal(left, 1100);
  assert.equal(q.count, 2);
  assert.equal(q.headAt, 100);
  assert.equal(drops.stale, 2);
  assert.equal(drops.staleBytes, 1100);
  assert.equal(drops.staleLarge, 1);
  assert.equal(drops.staleSmall, 1);
});

test('control and vital frames are never dropped, however old', () => {
  const { q, buf, end, drops } = queued([
    { id: 1, at: 0, cls: CONTROL },
    { id: 2, at: 0, cls: VITAL },
    { id: 3, at: 0, cls: LARGE },
    { id: 4, at: 0, cls: VITAL },
    { id: 5, at: 0, cls: SMALL },
    { id: 6, at: 900, cls: CONTROL },
  ]);
  const left = q.shed(1000, buf, end);
  assert.deepEqual(ids(buf, left), [1, 2, 4, 6]);
  assert.equal(drops.stale, 2);
  // What is left is kept, however long it waits.
  assert.equal(q.shed(5000, buf, left), left);
});

test('once standing for an interval, large frames above target go first; small ones wait until the budget', () => {
  const frames: Frame[] = [];
  // Audio (small) and video (large) interleaved, queued from 0 to 80 ms.
  for (let i = 0; i < 10; i++) {
    frames.push({ id: 2 * i + 1, at: i * 10, cls: SMALL });
    frames.push({ id: 2 * i + 2, at: i * 10, cls: LARGE });
  }
  const { q, buf, end, drops } = queued(frames);
  // 60: head above target (50) since now; not standing yet.
  assert.equal(q.shed(60, buf, end), end);
  assert.equal(q.standing, false);
  // 160: above target for an interval: large frames older than 50 ms (queued before 110) go, all
  // of them here; of the small ones only the one past the budget (queued at 0).
  let left = q.shed(160, buf, end);
  assert.deepEqual(ids(buf, left), [3, 5, 7, 9, 11, 13, 15, 17, 19]);
  assert.equal(drops.staleLarge, 10);
  assert.equal(drops.staleSmall, 1);
  assert.equal(q.standing, true);
  // 175: the small frames past the budget (queued before 25) go too.
  left = q.shed(175, buf, left);
  assert.deepEqual(ids(buf, left), [7, 9, 11, 13, 15, 17, 19]);
  assert.equal(drops.staleSmall, 3);
});

test('the standing state ends once the head is back under target', () => {
  const { q, buf, end } = queued([
    { id: 1, at: 0, cls: LARGE },
    { id: 2, at: 150, cls: LARGE },
  ]);
  q.shed(60, buf, end);
  let left = q.shed(160, buf, end);
  assert.deepEqual(ids(buf, left), [2]);
  assert.equal(q.standing, false);
  // A new excursion above target waits a whole interval again.
  left = q.shed(210, buf, left);
  assert.deepEqual(ids(buf, left), [2]);
});

test('a dropped video frame goes whole: its young packets behind it too, not other frames or streams', () => {
  const v = (ts: number): { ssrc: number; ts: number } => ({ ssrc: 0xaaaa, ts });
  const { q, buf, end, drops } = queued([
    // Frame ts 1000: three packets, the first two stale, the last young, with audio in between.
    { id: 1, at: 0, cls: LARGE, rtp: v(1000) },
    { id: 2, at: 0, cls: LARGE, rtp: v(1000) },
    { id: 3, at: 190, cls: SMALL, rtp: { ssrc: 0xbbbb, ts: 5 } },
    { id: 4, at: 190, cls: SMALL, rtp: v(1000) }, // the frame's small last packet
    { id: 5, at: 195, cls: LARGE, rtp: v(2000) }, // the next frame stays
    { id: 6, at: 195, cls: LARGE, rtp: { ssrc: 0xcccc, ts: 1000 } }, // another stream, same timestamp
  ]);
  const left = q.shed(200, buf, end);
  assert.deepEqual(ids(buf, left), [3, 5, 6]);
  assert.equal(drops.stale, 3);
  assert.equal(drops.staleLarge, 2);
  assert.equal(drops.staleSmall, 1);
});

test('a video frame begun is finished: the stale tail of a frame partly written stays (up to FINISH_MS), other stale frames go', () => {
  const v = (ts: number): { ssrc: number; ts: number } => ({ ssrc: 0xaaaa, ts });
  const { q, buf, end, drops } = queued([
    { id: 1, at: 0, cls: LARGE, rtp: v(1000) },
    { id: 2, at: 0, cls: LARGE, rtp: v(1000) },
    { id: 3, at: 0, cls: LARGE, rtp: v(1000) },
    { id: 4, at: 0, cls: SMALL, rtp: { ssrc: 0xbbbb, ts: 5 } }, // audio behind it
    { id: 5, at: 0, cls: LARGE, rtp: v(1000) }, // the key frame's last packet
    { id: 6, at: 0, cls: LARGE, rtp: v(2000) }, // the next frame, none of it written
  ]);
  // The writer (held back by the cap) wrote the first packet only.
  q.shift(1000);
  const rest = Buffer.from(buf.subarray(1000, end));
  let left = q.shed(200, rest, end - 1000);
  assert.deepEqual(ids(rest, left), [2, 3, 5], 'the begun frame stays; the stale audio and the next frame go');
  assert.equal(drops.stale, 2);
  // A frame still unfinished after FINISH_MS goes.
  left = q.shed(FINISH_MS + 1, rest, left);
  assert.deepEqual(ids(rest, left), []);
  // A whole batch written (clear) marks its last video frame begun too.
  const b = queued([{ id: 1, at: 0, cls: LARGE, rtp: v(7) }]);
  b.q.clear();
  b.q.push(0, 0, 1000, LARGE, true, 0xaaaa, 7);
  b.buf.fill(9, 0, 1000);
  assert.deepEqual(ids(b.buf, b.q.shed(400, b.buf, 1000)), [9]);
});

test('prefixWithin and shift: a chunk of whole frames is written, the rest keeps its times', () => {
  const { q, buf, end } = queued([
    { id: 1, at: 0, cls: LARGE },
    { id: 2, at: 1, cls: LARGE },
    { id: 3, at: 2, cls: LARGE },
    { id: 4, at: 3, cls: LARGE },
  ]);
  assert.equal(end, 4000);
  assert.equal(q.prefixWithin(2500), 2000);
  assert.equal(q.prefixWithin(10), 1000); // at least one frame
  q.shift(2000);
  assert.equal(q.count, 2);
  assert.equal(q.headAt, 2);
  assert.equal(q.prefixWithin(4096), 2000);
  // Shed after the shift sees offsets from 0.
  const rest = Buffer.from(buf.subarray(2000, 4000));
  const left = q.shed(152.5, rest, 2000);
  assert.deepEqual(ids(rest, left), [4]);
});

test('shift inside a frame (a writer filling whole Tor cells): its tail stays at the head, never dropped, until written', () => {
  const { q, buf } = queued([
    { id: 1, at: 0, cls: LARGE },
    { id: 2, at: 1, cls: LARGE, rtp: { ssrc: 7, ts: 70 } },
    { id: 3, at: 2, cls: LARGE, rtp: { ssrc: 7, ts: 71 } },
  ]);
  q.shift(1498); // frame 1 and 498 bytes of frame 2
  assert.equal(q.count, 2);
  assert.equal(q.partialHead, true);
  assert.equal(q.frameEnd(0), 502, "the rest of frame 2's bytes");
  assert.equal(q.frameEnd(1), 1502);
  assert.equal(q.frameClass(0), VITAL, 'never dropped: the stream is inside it');
  // Long past the budget: frame 3 goes, the tail stays (and the receiver gets frame 2 whole).
  const rest = Buffer.from(buf.subarray(1498, 3000));
  const left = q.shed(10_000, rest, 1502);
  assert.equal(left, 502);
  assert.deepEqual(ids(rest, left), [2]);
  assert.equal(q.partialHead, true);
  q.shift(502);
  assert.equal(q.count, 0);
  assert.equal(q.partialHead, false, 'written: the stream is between frames again');
});

test('many frames: the queue grows and keeps bytes and order', () => {
  const frames: Frame[] = [];
  for (let i = 0; i < 300; i++) frames.push({ id: (i % 250) + 1, at: i, cls: i % 3 === 0 ? VITAL : SMALL, len: 20 });
  const { q, buf, end, drops } = queued(frames);
  const left = q.shed(300 + 150 - 100, buf, end); // budget 150: frames before 200 stale
  const vitalBefore = frames.filter((f) => f.at < 200 && f.cls === VITAL).length;
  assert.equal(q.count, vitalBefore + 100);
  assert.equal(drops.stale, 200 - vitalBefore);
  assert.equal(left, q.count * 20);
});

test('a budget of 0 is refused (the writer has no queue then)', () => {
  assert.throws(() => new TimedQueue({ maxDelayMs: 0, drops: new QueueDrops() }), RangeError);
});

test('promoteUrgent: audio and vital messages (RTCP) behind held video move ahead of it, each group in its order; the video stream itself is not reordered', () => {
  const video = (id: number, at: number, len = 1000): Frame => ({ id, at, cls: len >= 500 ? LARGE : SMALL, len, rtp: { ssrc: 7, ts: 1 } });
  const audio = (id: number, at: number): Frame => ({ id, at, cls: SMALL, rtp: { ssrc: 9, ts: at } });
  const { q, buf, end } = queued([
    audio(1, 0),
    video(2, 1),
    video(3, 2),
    audio(4, 3),
    { id: 5, at: 4, cls: VITAL }, // RTCP: goes ahead too
    video(6, 5, 200), // the video frame's small last packet: its own stream's order stays
    audio(7, 6),
  ]);
  assert.equal(q.promoteUrgent(buf, 0), false, 'frame 0 is audio: nothing is held back behind it');
  assert.equal(q.promoteUrgent(buf, 50), false, 'no frame starts there');
  assert.equal(q.promoteUrgent(buf, 100), true, 'frame 1 (at byte 100), video');
  assert.deepEqual(ids(buf, end), [1, 4, 5, 7, 2, 3, 6]);
  // Offsets and lengths moved with the bytes: frame ends are the running sums.
  const lens = [100, 100, 100, 100, 1000, 1000, 200];
  let sum = 0;
  for (let i = 0; i < q.count; i++) assert.equal(q.frameEnd(i), (sum += lens[i] as number), `frame ${i}`);
  assert.deepEqual(
    [1, 2, 3, 4].map((i) => q.frameClass(i)),
    [SMALL, VITAL, SMALL, LARGE],
  );
  assert.equal(q.promoteUrgent(buf, 400), false, 'nothing left to move (frame 4, at byte 400)');
  // A second video stream's small packet behind its own large one stays behind it too.
  const second = queued([
    video(1, 0),
    { id: 2, at: 1, cls: LARGE, rtp: { ssrc: 8, ts: 1 } },
    { id: 3, at: 2, cls: SMALL, rtp: { ssrc: 8, ts: 1 } },
    audio(4, 3),
  ]);
  assert.equal(second.q.promoteUrgent(second.buf, 0), true);
  assert.deepEqual(ids(second.buf, second.end), [4, 1, 2, 3]);
  // They keep their times: after the move the video frame (queued at 0) is past the 150-ms budget
  // at 200 and goes; the audio (queued at 190) stays.
  const { q: q2, buf: b2, end: e2 } = queued([video(2, 0), audio(4, 190)]);
  assert.equal(q2.promoteUrgent(b2, 0), true);
  assert.deepEqual(ids(b2, q2.shed(200, b2, e2)), [4]);
});
