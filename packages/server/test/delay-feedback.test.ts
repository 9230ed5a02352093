// The server core's side of the delay extension (sans-IO, fake clock): a plain client sees
// nothing of it; an offer is echoed (as a trailer) only when the connection can run it; reports
// are taken silently on negotiated connections, and a Binding indication stays as silent as
// before on others (no reply, not malformed); relayed data the session calls late is dropped on
// arrival (counted), control-like payloads (STUN, RTCP) never.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DelayFeedbackCounters, DelayFeedbackSession, LATE_MIN_MS, type DelayReport } from '@onionturn/io';
import {
  AttributeType,
  MessageClass,
  Method,
  encodeDelayFeedbackIndication,
  hasDelayFeedbackOffer,
  withDelayFeedbackOffer,
  type TransportAddress,
} from '@onionturn/protocol';
import { Client } from '../src/index.js';
import { FakeLink, TestClient, world, type World } from './harness.js';

const PEER: TransportAddress = { family: 'IPv4', address: '93.184.216.34', port: 5000 };
const REQUESTED_UDP = [[AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }]] as const;

/** A TCP link whose shell runs the extension (as node-server's TcpLink does). */
class FeedbackLink extends FakeLink {
  readonly reports: DelayReport[] = [];
  session: DelayFeedbackSession | undefined;
  constructor(readonly clock: { now: number }) {
    super();
  }
  negotiateDelayFeedback(): DelayFeedbackSession {
    this.session ??= new DelayFeedbackSession({
      staleMs: 150,
      encode: encodeDelayFeedbackIndication,
      clock: () => this.clock.now,
      counters: new DelayFeedbackCounters(),
    });
    this.session.negotiate(this.clock.now);
    return this.session;
  }
  delayReport(report: DelayReport): void {
    this.reports.push(report);
    this.session?.onReport(this.clock.now, report);
  }
}

function feedbackClient(w: World): TestClient {
  const link = new FeedbackLink(w.clock);
  return new TestClient(w.core, new Client('tcp', { family: 'IPv4', address: '192.0.2.9', port: 41000 }, link, 'tcp|192.0.2.9|41000'), link);
}

/** An authenticated Allocate that offers the extension; the raw success. */
function allocateOffering(t: TestClient): Buffer {
  t.challenge();
  const res = t.raw(withDelayFeedbackOffer(t.build(Method.Allocate, REQUESTED_UDP, true)));
  assert.ok(res, 'answered');
  return t.link.messages.at(-1) as Buffer;
}

const report = (clockMs: number): Buffer => encodeDelayFeedbackIndication({ clockMs, receivedBytes: 0, oneWayDelayMs: 0 });

test('a plain client: no echo, nothing extra; a Binding indication (with or without a report) gets no reply and is not malformed', () => {
  const w = world();
  const t = w.client();
  t.allocate();
  assert.equal(hasDelayFeedbackOffer(t.link.messages.at(-1) as Buffer), false);
  assert.equal(t.client.delayFeedback, undefined);
  const before = t.link.messages.length;
  assert.equal(t.raw(report(5)), undefined);
  assert.equal(t.link.messages.length, before);
  assert.equal(w.core.stats.malformed, 0);
});

test('an offer on a connection that can run it: echoed as a trailer, negotiated, its reports taken silently', () => {
  const w = world();
  const t = feedbackClient(w);
  const success = allocateOffering(t);
  assert.equal(hasDelayFeedbackOffer(success), true, 'echoed');
  assert.equal(t.link.last().messageClass, MessageClass.SuccessResponse);
  assert.ok(t.client.delayFeedback?.negotiated);
  const before = t.link.messages.length;
  assert.equal(t.raw(report(1234)), undefined, 'no reply to a report');
  assert.equal(t.link.messages.length, before);
  assert.deepEqual(
    (t.link as FeedbackLink).reports.map((r) => r.clockMs),
    [1234],
  );
  assert.equal(w.core.stats.malformed, 0);
});

test('an offer on a connection that cannot run it (a UDP client): no echo, its indications ignored as before', () => {
  const w = world();
  const t = w.client({}, 'udp');
  t.challenge();
  t.raw(withDelayFeedbackOffer(t.build(Method.Allocate, REQUESTED_UDP, true)));
  assert.equal(hasDelayFeedbackOffer(t.link.messages.at(-1) as Buffer), false);
  assert.equal(t.client.delayFeedback, undefined);
  assert.equal(t.raw(report(1)), undefined);
  assert.equal(w.core.stats.malformed, 0);
});

test('stale on arrival: while the reports show more queueing than the bound, small media is dropped and counted; video, STUN, RTCP and the data channel still go', () => {
  const w = world();
  const t = feedbackClient(w);
  allocateOffering(t);
  t.permit(PEER);
  const relay = w.relays[0]!;
  const video = Buffer.alloc(1000, 0x80); // RTP-like, large
  const audio = Buffer.alloc(160, 0x80); // RTP-like, small
  audio[1] = 111; // its payload type, without the marker bit (a video frame's last packet has it)
  const rtcp = Buffer.from([0x80, 200, 0, 1, 0, 0, 0, 0]);
  // Uncongested: reports 40 ms after their clock.
  for (let i = 0; i < 10; i++) {
    w.clock.now += 50;
    t.raw(report((w.clock.now - 40) >>> 0));
    t.send(PEER, audio);
  }
  assert.equal(relay.sent.length, 10, 'nothing dropped on an uncongested path');
  // After a long stall: a report written LATE_MIN_MS + 100 ms ago arrives now, with the burst behind it.
  w.clock.now += 50;
  t.raw(report((w.clock.now - LATE_MIN_MS - 100) >>> 0));
  t.send(PEER, audio);
  assert.equal(w.core.stats.droppedStaleArrival, 1, 'the late audio is dropped');
  t.send(PEER, rtcp);
  assert.equal(relay.sent.length, 11, 'the RTCP went');
  // Video has crossed Tor already: dropped here, its frame would wait for the receiver's NACK and
  // a retransmission over the same narrow path.
  t.send(PEER, video);
  assert.equal(relay.sent.length, 12, 'the video went');
  // The data channel's SCTP (DTLS application data) has crossed Tor already: it goes too (dropped,
  // it would only be sent again a second or more later).
  const dataChannel = Buffer.alloc(300);
  dataChannel[0] = 23;
  dataChannel[1] = 0xfe;
  dataChannel[2] = 0xfd;
  t.send(PEER, dataChannel);
  assert.equal(relay.sent.length, 13, 'the data channel record went');
  assert.equal(w.core.stats.droppedStaleArrival, 1);
  // The backlog drained: fresh again.
  w.clock.now += 50;
  t.raw(report((w.clock.now - 45) >>> 0));
  t.send(PEER, audio);
  assert.equal(relay.sent.length, 14);
  assert.equal(w.core.stats.droppedStaleArrival, 1);
});
