// The status page's model without sockets: flows by kind (new kinds slot in by name), drops, the
// graph's rates on a given time, and the test call's failed step from the counters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShimStats } from '../src/stats.js';
import { StatusHistory, TestCallTracker, flowKinds, statusJson, type TorView } from '../src/status-model.js';
import { STATUS_JS, statusPageHtml } from '../src/status-page.js';

const torUp: TorView = {
  socks: '127.0.0.1:9050',
  managed: false,
  bootstrapPercent: undefined,
  bootstrapSummary: undefined,
  restarts: 0,
  verdict: 'tor',
  verdictReason: undefined,
  checkedAt: 0,
};

test('flows by kind: TURN UDP and TCP always, another kind once used, with its own label', () => {
  const s = new ShimStats();
  s.kind('turn-udp').opened = 3;
  s.kind('turn-udp').closed = 1;
  s.kind('turn-udp').bytesToServer = 1000;
  s.kind('socks-udp').opened = 1;
  s.kind('some-future-kind').opened = 2;
  const k = flowKinds(s);
  assert.deepEqual(
    k.map((x) => [x.kind, x.label, x.open]),
    [
      ['turn-udp', 'TURN over UDP', 2],
      ['turn-tcp', 'TURN over TCP', 0],
      ['socks-udp', 'SOCKS5 UDP', 1],
      ['some-future-kind', 'some-future-kind', 2],
    ],
  );
});

test('the graph: bytes and drops per second between samples, one sample however many pollers, bounded', () => {
  const s = new ShimStats();
  const h = new StatusHistory(3, 900);
  h.sample(0, s);
  s.kind('turn-udp').bytesToServer = 2000;
  s.queueDropped = 4;
  h.sample(2000, s);
  h.sample(2100, s); // a second poller: no sample
  assert.deepEqual(h.points, [{ at: 2000, bytesPerSecond: 1000, dropsPerSecond: 2 }]);
  for (let t = 3000; t <= 8000; t += 1000) h.sample(t, s);
  assert.equal(h.points.length, 3);
});

test('the test call names the first failed step: SOCKS, Tor, server, TURN auth, peer policy', () => {
  const cases: [string, (s: ShimStats) => void, string | undefined][] = [
    ['nothing failed', () => {}, undefined],
    ['SOCKS port dead', (s) => (s.dialFailures['socks-unreachable'] = 1), 'socks'],
    ['tor could not reach it', (s) => (s.dialFailures['socks-reply'] = 6), 'tor'],
    ['TLS pin', (s) => (s.dialFailures['pin-mismatch'] = 1), 'server'],
    ['credential URL', (s) => s.credentialFailures++, 'server'],
    ['upstream 401', (s) => s.turnAuthRefused++, 'turn-auth'],
    ['local password wrong', (s) => s.authFailures++, 'turn-auth'],
    ['peer policy', (s) => s.peerRefused++, 'peer-policy'],
    ['tor first', (s) => ((s.peerRefused += 1), (s.dialFailures['timeout'] = 1)), 'tor'],
  ];
  for (const [name, fail, step] of cases) {
    const s = new ShimStats();
    s.dialFailures['socks-reply'] = 5; // before the test: not its failure
    const t = new TestCallTracker();
    assert.equal(t.view(s, torUp), undefined);
    t.start(1000, s);
    fail(s);
    const v = t.view(s, torUp);
    assert.equal(v?.step, step, name);
    if (step) assert.ok(v?.detail && v.detail.length > 10);
  }
});

test('tor down shows in the snapshot and as the failed step', () => {
  const s = new ShimStats();
  const t = new TestCallTracker();
  t.start(0, s);
  const down: TorView = { ...torUp, verdict: 'unreachable', verdictReason: 'ECONNREFUSED' };
  const j = statusJson(
    5,
    down,
    { listen: '127.0.0.1:3478', mode: 'pass-through', serverChoice: 'failover', servers: [], stats: s, dialQueue: 0 },
    new StatusHistory(),
    t,
  );
  assert.equal(j.tor.up, false);
  assert.equal(j.test?.step, 'socks');
  assert.equal(statusJson(5, down, undefined, new StatusHistory(), t).shim, undefined, 'before the shim runs: tor only');
});

test('the upstream servers show with their health and the choice among them', () => {
  const s = new ShimStats();
  const server = { label: 'a.onion:443', transport: 'tcp', reachable: false, lastDialAt: 4, lastError: 'socks-reply', pins: [] };
  const servers = [
    { ...server, healthy: false, failuresInRow: 2, retryInS: 50 },
    { ...server, label: 'b.onion:443', reachable: true, lastError: undefined, healthy: true, failuresInRow: 0, retryInS: undefined },
  ];
  const j = statusJson(
    5,
    torUp,
    { listen: '127.0.0.1:3478', mode: 'pass-through', serverChoice: 'round-robin', servers, stats: s, dialQueue: 0 },
    new StatusHistory(),
    new TestCallTracker(),
  );
  assert.equal(j.shim?.serverChoice, 'round-robin');
  assert.deepEqual(
    j.shim?.servers.map((v) => [v.label, v.healthy, v.failuresInRow, v.retryInS]),
    [
      ['a.onion:443', false, 2, 50],
      ['b.onion:443', true, 0, undefined],
    ],
  );
});

test('the page carries the token in a meta tag, escapes what it embeds, and its script has no inline handlers', () => {
  const html = statusPageHtml({ token: 'tok', iceServersJson: '{"a":"<script>"}', credentialsNote: '', turnUrls: ['turn:127.0.0.1:1?transport=udp'] });
  assert.match(html, /<meta name="onionturn-token" content="tok">/);
  assert.ok(!html.includes('<script>"'), 'embedded JSON is escaped');
  assert.doesNotMatch(html, /<script>|onclick=/);
  assert.match(STATUS_JS, /x-onionturn-token/);
  assert.doesNotMatch(STATUS_JS, /\?token=|location\.search/, 'the token never goes into a URL');
});
