// Datagram onion services end to end (issue 15 B): the shim's client module (openOnionDatagramStream)
// -> real tor client -> private Tor network -> onion service tor -> `onionturn udp-gateway` (the real
// CLI) -> a UDP echo server, and -> a real dnsmasq answering a DNS query built here by hand.
// Bad input: a stream of garbage framing is closed while another stream keeps working; an
// oversized datagram is dropped (gateway and client side) and the stream goes on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { openOnionDatagramStream, socksConnect, type OnionDatagramStream } from '@onionturn/client';
import { ProcessGroup, TOOLS, freePort, requireTool, startTorNetwork, waitFor, type Started, type TorNetwork } from '@onionturn/testkit';
import { BIN, cleanEnv } from './run-cli.js';

const MAX_DATAGRAM = 1400;

interface Opened {
  readonly stream: OnionDatagramStream;
  readonly received: Buffer[];
  readonly closed: { reason?: string };
}

describe('datagram onion service: client module -> Tor -> onion service -> udp-gateway -> UDP', () => {
  const group = new ProcessGroup();
  let net: TorNetwork | undefined;
  let echo: UdpSocket | undefined;
  let echoGateway: Started;
  let echoPort: number;
  let dnsPort: number;
  let metricsPort: number;
  let onion: string;
  const streams: OnionDatagramStream[] = [];

  async function startGateway(name: string, listenPort: number, target: string, extra: readonly string[] = []): Promise<Started> {
    const g = group.spawn(
      name,
      process.execPath,
      [BIN, 'udp-gateway', '--listen', `tcp://127.0.0.1:${listenPort}`, '--to', target, '--log-level', 'debug', ...extra],
      { env: cleanEnv() },
    );
    await waitFor(
      `${name} to listen`,
      () => {
        if (g.child.exitCode !== null) throw new Error(`${name} exited ${g.child.exitCode}: ${g.output()}`);
        return g.output().includes('udp-gateway listening');
      },
      10_000,
      50,
    );
    return g;
  }

  before(async () => {
    const dnsmasq = requireTool(TOOLS.dnsmasq);
    echo = createSocket('udp4');
    const e = echo;
    e.on('message', (msg, rinfo) => e.send(msg, rinfo.port, rinfo.address));
    e.bind(0, '127.0.0.1');
    await once(e, 'listening');
    const dnsmasqPort = await freePort();
    group.spawn('dnsmasq', dnsmasq, [
      '--no-daemon',
      '--conf-file=/dev/null',
      '--pid-file=',
      `--port=${dnsmasqPort}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      '--address=/example.test/10.9.8.7',
      '--log-facility=-',
    ]);
    echoPort = await freePort();
    dnsPort = await freePort();
    metricsPort = await freePort();
    echoGateway = await startGateway('udp-gateway (echo)', echoPort, `udp://127.0.0.1:${e.address().port}`, [
      '--max-datagram',
      String(MAX_DATAGRAM),
      '--metrics',
      `127.0.0.1:${metricsPort}`,
    ]);
    await startGateway('udp-gateway (dns)', dnsPort, `udp://127.0.0.1:${dnsmasqPort}`);
    net = await startTorNetwork({ onion: { targetPort: echoPort, extraPorts: [dnsPort] }, timeoutMs: 120_000 });
    onion = net.onion?.hostname ?? assert.fail('no onion service');
  });

  after(async () => {
    for (const s of streams) s.close('test done');
    await group.stopAll();
    await net?.stop();
    echo?.close();
  });

  function open(port: number, username = 'a', maxQueuedBytes?: number): Opened {
    const received: Buffer[] = [];
    const closed: { reason?: string } = {};
    const t = net ?? assert.fail('no network');
    const stream = openOnionDatagramStream({
      socksHost: '127.0.0.1',
      socksPort: t.socksPort,
      auth: { username, password: 'x' },
      host: onion,
      port,
      onDatagram: (p) => received.push(Buffer.from(p)),
      onClose: (reason) => {
        closed.reason = reason;
      },
      ...(maxQueuedBytes === undefined ? {} : { maxQueuedBytes }),
    });
    streams.push(stream);
    return { stream, received, closed };
  }

  test('datagrams sent before the stream is open are queued and echoed, in order, empty ones too', async () => {
    const o = open(echoPort);
    const sent = ['one', '', 'three', 'x'.repeat(1200)];
    for (const s of sent) assert.equal(o.stream.send(Buffer.from(s)), true);
    assert.equal(o.stream.stats.state, 'opening');
    await waitFor('four echoes', () => o.received.length >= 4 || o.closed.reason, 90_000);
    assert.equal(o.closed.reason, undefined);
    assert.deepEqual(
      o.received.map((b) => b.toString()),
      sent,
    );
    assert.equal(o.stream.stats.state, 'open');
    assert.equal(o.stream.stats.datagramsReceived, 4);
  });

  test('while the stream opens, datagrams beyond maxQueuedBytes are dropped and counted; the queued ones arrive', async () => {
    const o = open(echoPort, 'queue', 3000);
    const sent = [1, 2, 3].map((i) => o.stream.send(Buffer.alloc(1200, i)));
    assert.deepEqual(sent, [true, true, false], 'two frames of 1203 bytes fit in 3000, a third does not');
    assert.equal(o.stream.stats.droppedQueueFull, 1);
    await waitFor('two echoes', () => o.received.length >= 2 || o.closed.reason, 90_000);
    assert.deepEqual(
      o.received.map((b) => b[0]),
      [1, 2],
    );
  });

  test('a DNS query built here is answered by dnsmasq behind the onion service', async () => {
    const o = open(dnsPort);
    const query = dnsQuery(0x4242, 'www.example.test');
    o.stream.send(query);
    await waitFor('a DNS answer', () => o.received.length >= 1 || o.closed.reason, 90_000);
    const answer = o.received[0] ?? assert.fail(`no answer: ${o.closed.reason}`);
    assert.equal(answer.readUInt16BE(0), 0x4242, 'the query id');
    assert.equal(answer[3]! & 0x0f, 0, 'rcode NOERROR');
    assert.equal(answer.readUInt16BE(6), 1, 'one answer');
    assert.deepEqual([...answer.subarray(answer.length - 4)], [10, 9, 8, 7]);
  });

  test('a stream of garbage framing is closed by the gateway; another stream keeps working', async () => {
    const good = open(echoPort, 'good');
    good.stream.send(Buffer.from('before'));
    await waitFor('the first echo', () => good.received.length >= 1 || good.closed.reason, 90_000);
    const t = net ?? assert.fail('no network');
    const r = await socksConnect({
      proxy: { host: '127.0.0.1', port: t.socksPort },
      target: { host: onion, port: echoPort },
      auth: { username: 'garbage', password: 'x' },
      timeoutMs: 90_000,
    });
    if (!r.ok) assert.fail(r.error.reason);
    const raw = r.socket;
    raw.resume();
    const ended = once(raw, 'close');
    raw.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await ended;
    await waitFor('the gateway to log the framing close', () => /"reason":"framing"/.test(echoGateway.output()), 10_000);
    good.stream.send(Buffer.from('after'));
    await waitFor('the second echo', () => good.received.length >= 2 || good.closed.reason, 60_000);
    assert.deepEqual(
      good.received.map((b) => b.toString()),
      ['before', 'after'],
    );
    assert.equal(good.closed.reason, undefined);
  });

  test('an oversized datagram is dropped (by the client over 65535 bytes, by the gateway over --max-datagram); the stream goes on', async () => {
    const o = open(echoPort, 'big');
    assert.equal(o.stream.send(Buffer.alloc(70_000)), false);
    assert.equal(o.stream.stats.droppedTooLong, 1);
    o.stream.send(Buffer.alloc(MAX_DATAGRAM + 1, 0x62));
    o.stream.send(Buffer.from('small'));
    await waitFor('the small echo', () => o.received.length >= 1 || o.closed.reason, 90_000);
    assert.deepEqual(
      o.received.map((b) => b.toString()),
      ['small'],
    );
    const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(body, /onionturn_gateway_dropped_total\{reason="oversized"\} 1\n/);
    assert.match(body, /onionturn_gateway_streams_closed_total\{reason="framing"\} 1\n/);
    assert.doesNotMatch(body, /127\.0\.0\.1|\.onion/);
    // The gateway's counters, in its closing log line.
    echoGateway.child.kill('SIGTERM');
    await once(echoGateway.child, 'exit');
    const stopped = /\{[^\n]*"udp-gateway stopped"[^\n]*\}/.exec(echoGateway.output())?.[0] ?? assert.fail(echoGateway.output());
    const counters = JSON.parse(stopped) as Record<string, number>;
    assert.equal(counters['droppedOversized'], 1);
    assert.equal(counters['closedFraming'], 1);
    assert.equal(counters['datagramsToTarget'], 9, 'four, two queued, before and after, small');
    assert.equal(counters['streamsAccepted'], 5);
    await waitFor('the client streams to be closed', () => o.closed.reason, 30_000);
  });
});

/** A DNS query (RFC 1035 §4.1): header with RD, one question, type A, class IN. */
function dnsQuery(id: number, name: string): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}
