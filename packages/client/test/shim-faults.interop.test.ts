// Isolation as the SOCKS server sees it, and faults: upstream refuses, Tor's onion errors, SOCKS
// down, failover, upstream closing mid-flow, apps sending garbage. Other flows must not notice,
// and no socket may be left behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { AttributeType, MessageBuilder, MessageClass, Method } from '@onionturn/protocol';
import {
  ProcessGroup,
  SocksRecorder,
  countClientConnections,
  freePort,
  runUclient,
  sleep,
  startCoturn,
  startTurnutilsPeer,
  waitFor,
  type Coturn,
  type SocksRequestRecord,
} from '@onionturn/testkit';
import { SecretCredentialSource, Shim, parseUpstream, type IsolationMode, type LocalAuthConfig, type UpstreamServer } from '../src/index.js';
import { ManualClock, type Clock } from '../src/clock.js';
import { captureLogger, messages, type LogLine } from './helpers.js';

const SECRET = 'faults-secret';

function servers(...texts: string[]): UpstreamServer[] {
  return texts.map((t) => {
    const r = parseUpstream(t);
    if (!r.ok) throw new Error(r.reason);
    return r.value;
  });
}

/** An unauthenticated Allocate: what opens a flow (a Binding is answered by the shim itself). */
function allocateRequest(): Buffer {
  return new MessageBuilder(Method.Allocate, MessageClass.Request).add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }).build();
}

async function sendUdp(port: number, data: Buffer): Promise<void> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.send(data, port, '127.0.0.1', () => r()));
  s.close();
}

describe('isolation and faults', () => {
  const group = new ProcessGroup();
  const shims: Shim[] = [];
  let coturn: Coturn;
  let peerPort: number;
  let recorder: SocksRecorder;
  let replyFor: ((r: SocksRequestRecord) => number | undefined) | undefined;

  async function startShim(opts: {
    servers: UpstreamServer[];
    socksPort?: number;
    isolation?: IsolationMode;
    detail?: boolean;
    localAuth?: LocalAuthConfig;
    newFlowRate?: { perSecond: number; burst: number };
    newFlowWaitMs?: number;
    clock?: Clock;
  }): Promise<{ shim: Shim; lines: LogLine[] }> {
    const log = captureLogger();
    const shim = new Shim({
      listen: { host: '127.0.0.1', port: 0 },
      servers: opts.servers,
      socks: { host: '127.0.0.1', port: opts.socksPort ?? recorder.port },
      isolation: opts.isolation ?? 'per-flow',
      logger: log.logger,
      connectTimeoutMs: 5000,
      tickMs: 200,
      detail: opts.detail ?? false,
      ...(opts.localAuth ? { localAuth: opts.localAuth } : {}),
      ...(opts.newFlowRate ? { newFlowRate: opts.newFlowRate } : {}),
      ...(opts.newFlowWaitMs !== undefined ? { newFlowWaitMs: opts.newFlowWaitMs } : {}),
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
    shims.push(shim);
    await shim.start();
    return { shim, lines: log.lines };
  }

  before(async () => {
    coturn = await startCoturn(group, { secrets: [SECRET], verbose: false });
    peerPort = (await startTurnutilsPeer(group)).port;
    recorder = await SocksRecorder.start({ hosts: { 'turn.example.test': '127.0.0.1' }, replyFor: (r) => replyFor?.(r) });
  });

  after(async () => {
    for (const s of shims) await s.stop();
    await recorder?.close();
    await group.stopAll();
  });

  test('per-flow isolation: distinct SOCKS credentials per flow; hostnames go to SOCKS unresolved', async () => {
    const { shim, lines } = await startShim({ servers: servers(`tcp://turn.example.test:${coturn.port}`) });
    const first = recorder.requests.length;
    const r = await runUclient(group, {
      server: { host: '127.0.0.1', port: shim.address.port },
      peer: { host: '127.0.0.1', port: peerPort },
      noRtcp: true,
      tcp: false,
      secret: SECRET,
      clients: 3,
      messages: 10,
    });
    assert.equal(r.received, r.sent, r.output.slice(-800));
    const reqs = recorder.requests.slice(first);
    assert.equal(reqs.length, 6);
    assert.equal(new Set(reqs.map((q) => q.username)).size, 6);
    assert.equal(new Set(reqs.map((q) => q.password)).size, 6);
    assert.deepEqual([...new Set(reqs.map((q) => `${q.addressType} ${q.host}`))], ['domain turn.example.test']);
    // A proxy that takes username/password (as tor does) gets no isolation warning.
    assert.doesNotMatch(messages(lines), /stream isolation is off/);
    await shim.stop();
  });

  test('shared isolation: one SOCKS credential for every flow', async () => {
    const { shim } = await startShim({ servers: servers(`tcp://127.0.0.1:${coturn.port}`), isolation: 'shared' });
    const first = recorder.requests.length;
    const r = await runUclient(group, {
      server: { host: '127.0.0.1', port: shim.address.port },
      peer: { host: '127.0.0.1', port: peerPort },
      noRtcp: true,
      tcp: false,
      secret: SECRET,
      clients: 3,
      messages: 10,
    });
    assert.equal(r.received, r.sent, r.output.slice(-800));
    const reqs = recorder.requests.slice(first);
    assert.equal(reqs.length, 6);
    assert.equal(new Set(reqs.map((q) => q.username)).size, 1);
    assert.equal(reqs[0]?.username?.startsWith('onionturn-'), true);
    await shim.stop();
  });

  test('upstream refuses: a clear log line, the flow is dropped; the server is named only with detail', async () => {
    const closed = await freePort();
    for (const detail of [false, true]) {
      const { shim, lines } = await startShim({ servers: servers(`tcp://127.0.0.1:${closed}`), detail });
      await sendUdp(shim.address.port, allocateRequest());
      await waitFor('flow closed', () => shim.stats.upstreamFailures === 1 && shim.activeFlows === 0, 5000);
      const name = detail ? `tcp://127\\.0\\.0\\.1:${closed}` : 'server #1';
      assert.match(messages(lines), new RegExp(`could not connect to ${name}: connection refused by the destination`));
      assert.deepEqual(lines.find((l) => l.message === 'listening')?.['upstream'], [detail ? `tcp://127.0.0.1:${closed}` : 'server #1']);
      if (!detail) assert.doesNotMatch(JSON.stringify(lines), new RegExp(`${closed}`), 'SafeLogging: no server name or port');
      await shim.stop();
    }
  });

  test('Tor extended reply codes become sentences', async () => {
    replyFor = (r) => (r.host.endsWith('.onion') ? 0xf0 : undefined);
    const onion = 'a'.repeat(56) + '.onion';
    const { shim, lines } = await startShim({ servers: servers(`${onion}:3478`) });
    await sendUdp(shim.address.port, allocateRequest());
    await waitFor('failure', () => shim.stats.upstreamFailures === 1, 5000);
    replyFor = undefined;
    assert.match(messages(lines), /onion service descriptor can not be found/);
    await shim.stop();
  });

  test('SOCKS proxy down: says so, and names tor', async () => {
    const deadSocks = await freePort();
    const { shim, lines } = await startShim({ servers: servers(`tcp://127.0.0.1:${coturn.port}`), socksPort: deadSocks });
    await sendUdp(shim.address.port, allocateRequest());
    await waitFor('failure', () => shim.stats.upstreamFailures === 1, 5000);
    assert.match(messages(lines), new RegExp(`SOCKS proxy 127\\.0\\.0\\.1:${deadSocks} is not accepting connections \\(ECONNREFUSED\\); is tor running\\?`));
    await shim.stop();
  });

  test('failover: the next server is used and the log says which (by number; by name with detail)', async () => {
    const closed = await freePort();
    for (const detail of [false, true]) {
      const { shim, lines } = await startShim({ servers: servers(`tcp://127.0.0.1:${closed}`, `tcp://127.0.0.1:${coturn.port}`), detail });
      const r = await runUclient(group, {
        server: { host: '127.0.0.1', port: shim.address.port },
        peer: { host: '127.0.0.1', port: peerPort },
        noRtcp: true,
        tcp: false,
        secret: SECRET,
        clients: 1,
        messages: 10,
      });
      assert.equal(r.received, r.sent, r.output.slice(-800));
      assert.equal(r.sent, 10);
      const text = messages(lines);
      if (detail) {
        assert.match(text, new RegExp(`upstream tcp://127\\.0\\.0\\.1:${closed} failed: .*connection refused.*; trying tcp://127\\.0\\.0\\.1:${coturn.port}`));
        assert.equal(lines.find((l) => l.message === 'upstream failover')?.['now'], `tcp://127.0.0.1:${coturn.port}`);
      } else {
        assert.match(text, /upstream server #1 failed: .*connection refused.*; trying server #2/);
        assert.equal(lines.find((l) => l.message === 'upstream failover')?.['now'], 'server #2');
        assert.equal(lines.find((l) => l.message === 'flow open')?.['upstream'], 'server #2');
        assert.doesNotMatch(JSON.stringify(lines), new RegExp(`${closed}|${coturn.port}`), 'SafeLogging: no server names or ports');
      }
      await shim.stop();
    }
  });

  test('HTTP to the TCP port (a web page fetching 127.0.0.1): closed before any SOCKS connection', async () => {
    const { shim } = await startShim({ servers: servers(`tcp://127.0.0.1:${coturn.port}`) });
    const first = recorder.requests.length;
    /**
     * Instead of a fixed sleep before a negative check: a real STUN request on a fresh connection
     * that does reach SOCKS. A dial of anything before it would have reached SOCKS first.
     */
    const control = async (): Promise<void> => {
      const before = recorder.requests.length;
      const s = connect({ host: '127.0.0.1', port: shim.address.port });
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      s.write(allocateRequest());
      await waitFor('the control request to reach SOCKS', () => recorder.requests.length > before, 5000);
      s.destroy();
    };
    const raw = connect({ host: '127.0.0.1', port: shim.address.port });
    raw.on('error', () => {});
    await new Promise((r) => raw.once('connect', r));
    // A SOCKS connection opened at accept time would come before the control's.
    await control();
    assert.equal(recorder.requests.length - first, 1, 'a silent connection dials nothing (only the control did)');
    raw.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n\r\n');
    const answer: Buffer[] = [];
    raw.on('data', (d: Buffer) => answer.push(d));
    await new Promise((r) => raw.once('close', r));
    assert.equal(Buffer.concat(answer).length, 0, 'nothing is answered');
    // What a page's fetch() loop does: every attempt is closed, none dials.
    for (let i = 0; i < 10; i++)
      await assert.rejects(fetch(`http://127.0.0.1:${shim.address.port}/`, { method: i % 2 ? 'POST' : 'GET', body: i % 2 ? 'x' : null }));
    await control();
    assert.equal(recorder.requests.length - first, 2, 'no SOCKS request but the two controls');
    assert.equal(shim.stats.appRefused, 11);
    assert.equal(shim.stats.upstreamFailures, 0);
    await waitFor('flows forgotten', () => shim.activeFlows === 0, 2000);
    await waitFor('no SOCKS connection left', () => countClientConnections(recorder.port) === 0, 5000);
    await shim.stop();
  });

  // App sockets of the rate tests, closed however a test ends (an open one would keep the test
  // process alive after a failure).
  const appSockets: { close(): void }[] = [];
  function udpApps(n: number): ReturnType<typeof createSocket>[] {
    const made = Array.from({ length: n }, () => createSocket('udp4'));
    appSockets.push(...made);
    return made;
  }
  function closeAppSockets(): void {
    for (const s of appSockets.splice(0)) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
  }

  test('new flows beyond the rate (a page opening RTCPeerConnections in a loop) wait their turn: no SOCKS request for them yet', async () => {
    try {
      // One token per 20 s: no refill while the test runs, so the burst alone decides.
      const { shim, lines } = await startShim({ servers: servers(`tcp://127.0.0.1:${coturn.port}`), newFlowRate: { perSecond: 0.05, burst: 3 } });
      const first = recorder.requests.length;
      const decided = (): number => shim.stats.dialsDelayed + recorder.requests.length - first;
      // Eight sources at once (sockets kept open, so no source port is reused).
      for (const a of udpApps(8)) await new Promise<void>((r) => a.send(allocateRequest(), shim.address.port, '127.0.0.1', () => r()));
      await waitFor('8 UDP flows dialed or waiting', () => decided() >= 8, 5000);
      assert.equal(recorder.requests.length - first, 3, 'the burst: three Tor streams');
      assert.equal(shim.stats.dialsDelayed, 5);
      let tcpClosed = 0;
      for (let i = 0; i < 4; i++) {
        const s = connect({ host: '127.0.0.1', port: shim.address.port });
        appSockets.push({ close: () => s.destroy() });
        s.on('error', () => {});
        s.once('close', () => tcpClosed++);
        await new Promise((r) => s.once('connect', r));
        s.write(allocateRequest());
      }
      await waitFor('4 TCP flows waiting', () => shim.stats.dialsDelayed === 9, 5000);
      // Waiting flows dial only when a token comes (exact on a manual clock: flow-table.test.ts),
      // and none comes while this test runs.
      assert.equal(recorder.requests.length - first, 3, 'still three');
      assert.equal(tcpClosed, 0, 'a waiting app connection stays open');
      assert.equal(shim.activeFlows, 12);
      assert.equal(shim.stats.dialRateRefused, 0);
      const warned = lines.filter((l) => /faster than --new-flows-per-second/.test(l.message));
      assert.equal(warned.length, 1, messages(lines));
      assert.equal(warned[0]?.level, 'warn');
      await shim.stop();
      await waitFor('waiting TCP flows closed by stop', () => tcpClosed === 4, 5000);
      assert.equal(recorder.requests.length - first, 3, 'stopping dials none of the waiting');
    } finally {
      closeAppSockets();
    }
  });

  test("a flood of flows from one source does not delay another source's first dial beyond one pacing slot", async () => {
    const clock = new ManualClock();
    const other = createSocket('udp4');
    appSockets.push(other);
    let stopShim = async (): Promise<void> => {};
    try {
      const paced = await startShim({ servers: servers(`tcp://127.0.0.1:${coturn.port}`), newFlowRate: { perSecond: 5, burst: 1 }, clock });
      stopShim = () => paced.shim.stop();
      const port = paced.shim.address.port;
      const first = recorder.requests.length;
      // The flood: 20 flows from 127.0.0.1 (what a page in the browser can do), one dials at once.
      for (const a of udpApps(20)) await new Promise<void>((r) => a.send(allocateRequest(), port, '127.0.0.1', () => r()));
      await waitFor('one dialed, 19 waiting', () => recorder.requests.length - first === 1 && paced.shim.dialQueue === 19, 5000, 5);
      clock.advance(200);
      await waitFor('the second of the flood dialed', () => recorder.requests.length - first === 2, 5000, 5);
      // Another source (an app on another loopback address) asks now, behind 18 waiting flows.
      await new Promise<void>((r) => other.bind(0, '127.0.0.2', () => r()));
      const answered = new Promise<Buffer>((resolve) => other.once('message', resolve));
      await new Promise<void>((r) => other.send(allocateRequest(), port, '127.0.0.1', () => r()));
      await waitFor('its flow waiting', () => paced.shim.dialQueue === 19, 5000, 5);
      clock.advance(199);
      assert.equal(recorder.requests.length - first, 2, 'no turn before the pacing slot');
      clock.advance(1);
      // Its Allocate reaches coturn through the third Tor stream, and coturn's 401 comes back.
      const answer = await Promise.race([answered, sleep(5000).then(() => undefined)]);
      assert.ok(answer !== undefined, 'the other source is answered through the next Tor stream, not after the 18 waiting');
      assert.equal(recorder.requests.length - first, 3);
      assert.equal(paced.shim.dialQueue, 18, 'the flood still waits its turns');
    } finally {
      // Stopped before its clock moves on: the flood must not dial into the next test's counts.
      await stopShim();
      clock.advance(5000);
      closeAppSockets();
    }
  });

  test('waiting flows dial in turn at the rate; one that waits too long is closed without dialing', async () => {
    // The shim's clock is a manual one: the pace is checked at its exact instants, with no sleeps.
    const clock = new ManualClock();
    const slowClock = new ManualClock();
    try {
      const paced = await startShim({ servers: servers(`tcp://127.0.0.1:${coturn.port}`), newFlowRate: { perSecond: 5, burst: 1 }, clock });
      const first = recorder.requests.length;
      for (const a of udpApps(5)) await new Promise<void>((r) => a.send(allocateRequest(), paced.shim.address.port, '127.0.0.1', () => r()));
      await waitFor('one dialed, four waiting', () => recorder.requests.length - first === 1 && paced.shim.stats.dialsDelayed === 4, 5000, 5);
      // One at once, then one per 200 ms.
      for (let n = 2; n <= 5; n++) {
        clock.advance(199);
        assert.equal(paced.shim.stats.dialsDelayed, 4);
        assert.equal(recorder.requests.length - first, n - 1, `not before ${(n - 1) * 200} ms`);
        clock.advance(1);
        await waitFor(`dial ${n} at ${(n - 1) * 200} ms`, () => recorder.requests.length - first === n, 5000, 5);
      }
      assert.equal(paced.shim.stats.dialRateRefused, 0);
      await paced.shim.stop();

      const slow = await startShim({
        servers: servers(`tcp://127.0.0.1:${coturn.port}`),
        newFlowRate: { perSecond: 0.05, burst: 1 },
        newFlowWaitMs: 300,
        clock: slowClock,
      });
      const before = recorder.requests.length;
      for (const a of udpApps(3)) await new Promise<void>((r) => a.send(allocateRequest(), slow.shim.address.port, '127.0.0.1', () => r()));
      await waitFor('one dialed, two waiting', () => recorder.requests.length - before === 1 && slow.shim.stats.dialsDelayed === 2, 5000, 5);
      slowClock.advance(299);
      assert.equal(slow.shim.stats.dialRateRefused, 0);
      slowClock.advance(1);
      await waitFor('two flows given up', () => slow.shim.stats.dialRateRefused === 2, 5000);
      assert.equal(recorder.requests.length - before, 1);
      await waitFor('their flows forgotten', () => slow.shim.activeFlows === 1, 2000);
      await slow.shim.stop();
    } finally {
      // The closed streams' destroy timers run on these clocks.
      clock.advance(5000);
      slowClock.advance(5000);
      closeAppSockets();
    }
  });

  test('local mode has no rate on new flows: a flow dials only once the app knows the local password', async () => {
    const localAuth: LocalAuthConfig = { local: { username: 'u', password: 'p', realm: 'onionturn.local' }, source: new SecretCredentialSource(SECRET, 3600) };
    // The tightest rate: in pass-through mode it would let one flow dial.
    const { shim } = await startShim({ servers: servers(`tcp://127.0.0.1:${coturn.port}`), localAuth, newFlowRate: { perSecond: 0.05, burst: 1 } });
    const r = await runUclient(group, {
      server: { host: '127.0.0.1', port: shim.address.port },
      peer: { host: '127.0.0.1', port: peerPort },
      noRtcp: true,
      tcp: false,
      username: 'u',
      password: 'p',
      clients: 3,
      messages: 10,
    });
    assert.equal(r.received, 30, r.output.slice(-1500));
    assert.equal(shim.stats.dialRateRefused, 0);
    await shim.stop();
  });

  test('local mode: a flood of malformed STUN is one warning per flow, the rest counted; no circuit', async () => {
    const localAuth: LocalAuthConfig = { local: { username: 'u', password: 'p', realm: 'onionturn.local' }, source: new SecretCredentialSource(SECRET, 3600) };
    const { shim, lines } = await startShim({ servers: servers(`tcp://127.0.0.1:${coturn.port}`), localAuth });
    const first = recorder.requests.length;
    // A STUN request header (cookie right), then an attribute running past the message's end.
    const bad = new MessageBuilder(Method.Allocate, MessageClass.Request).build().subarray(0, 20);
    const frame = Buffer.concat([bad, Buffer.from([0x00, 0x06, 0x00, 0x40, 0, 0, 0, 0])]);
    frame.writeUInt16BE(8, 2);
    const app = connect({ host: '127.0.0.1', port: shim.address.port });
    app.on('error', () => {});
    await new Promise((r) => app.once('connect', r));
    app.write(Buffer.concat(Array.from({ length: 200 }, () => frame)));
    await waitFor('all counted', () => shim.stats.resignWarnings === 200, 5000);
    app.end();
    await waitFor('flow closed', () => shim.activeFlows === 0, 5000);
    const warned = lines.filter((l) => /app sent a malformed STUN message/.test(l.message));
    assert.equal(warned.length, 1, messages(lines));
    assert.equal(lines.find((l) => l.message.startsWith('flow closed'))?.['warningsNotLogged'], 199);
    assert.equal(recorder.requests.length - first, 0, 'nothing went upstream, so nothing was dialed');
    await shim.stop();
  });

  test('upstream closes mid-flow and apps send garbage: only those flows end, others relay on, nothing leaks', async () => {
    const { shim, lines } = await startShim({ servers: servers(`tcp://127.0.0.1:${coturn.port}`) });
    const first = recorder.requests.length;
    const victim = runUclient(group, {
      server: { host: '127.0.0.1', port: shim.address.port },
      peer: { host: '127.0.0.1', port: peerPort },
      noRtcp: true,
      tcp: false,
      secret: SECRET,
      clients: 1,
      messages: 150,
      intervalMs: 20,
    });
    await waitFor('victim flows up', () => recorder.requests.length - first === 2 && shim.activeFlows === 2, 10_000);
    const bystander = runUclient(group, {
      server: { host: '127.0.0.1', port: shim.address.port },
      peer: { host: '127.0.0.1', port: peerPort },
      noRtcp: true,
      secret: SECRET,
      clients: 1,
      messages: 100,
      intervalMs: 20,
      tcp: true,
    });
    // The bystander's flows up (dialed through the recorder), instead of a fixed sleep: the fault
    // must come while both relay.
    await waitFor('bystander flows up', () => recorder.requests.length - first >= 3 && shim.activeFlows >= 3, 10_000);
    // The upstream of both victim flows goes away (an exit or the server hanging up).
    for (const q of recorder.requests.slice(first, first + 2)) for (const s of q.streams) s.destroy();
    // Garbage over UDP (dropped, counted) and over TCP (connection closed).
    await sendUdp(shim.address.port, Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    const garbage = connect({ host: '127.0.0.1', port: shim.address.port });
    garbage.on('error', () => {});
    garbage.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]));
    await new Promise((r) => garbage.once('close', r));
    const [v, b] = await Promise.all([victim, bystander]);
    assert.equal(b.sent, 100, b.output.slice(-600));
    assert.equal(b.received, 100, b.output.slice(-600));
    assert.equal((v.received ?? 0) < (v.sent ?? 0) || v.received === undefined, true, 'the victim lost its upstream');
    const text = messages(lines);
    assert.match(text, /flow closed: upstream closed the stream/);
    assert.match(text, /flow closed: app sent data that is not TURN \(first byte 0xff is neither STUN nor ChannelData\)/);
    assert.equal(shim.stats.notTurnDropped >= 1, true);
    await shim.stop();
    await waitFor('no shim->SOCKS sockets', () => countClientConnections(recorder.port) === 0, 5000);
    await waitFor('recorder relays closed', () => recorder.open === 0, 5000);
  });
});
