// The udp-gateway's I/O shell on loopback sockets (no Tor): streams speaking the framing by hand,
// a real UDP target. Only the target's answers reach a stream; streams over --max-streams are
// closed on arrival; idle streams are closed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { DatagramFrameDecoder, encodeDatagramFrame, encodeDatagramPreamble } from '@onionturn/protocol';
import { createLogger, UdpGateway } from '../src/index.js';
import { Writable } from 'node:stream';

interface Client {
  readonly socket: Socket;
  readonly got: Buffer[];
  readonly closed: Promise<unknown>;
}

const dialed: Socket[] = [];

async function dial(port: number): Promise<Client> {
  const socket = connect(port, '127.0.0.1');
  dialed.push(socket);
  await once(socket, 'connect');
  const got: Buffer[] = [];
  const d = new DatagramFrameDecoder({ onDatagram: (p) => got.push(Buffer.from(p)) });
  socket.on('data', (c: Buffer) => d.push(c));
  socket.on('error', () => undefined);
  return { socket, got, closed: once(socket, 'close') };
}

async function until(what: string, f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('udp-gateway on loopback', { timeout: 30_000 }, () => {
  let target: UdpSocket;
  const sources: number[] = [];
  let gateway: UdpGateway;
  let port: number;
  const logLines: string[] = [];

  before(async () => {
    target = createSocket('udp4');
    target.on('message', (msg, rinfo) => {
      sources.push(rinfo.port);
      target.send(Buffer.concat([Buffer.from('echo:'), msg]), rinfo.port, rinfo.address);
    });
    target.bind(0, '127.0.0.1');
    await once(target, 'listening');
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString());
        done();
      },
    });
    gateway = new UdpGateway({
      listenHost: '127.0.0.1',
      listenPort: 0,
      targetHost: '127.0.0.1',
      targetPort: target.address().port,
      limits: { maxStreams: 2, maxQueuedBytes: 65536, idleTimeoutMs: 1000, maxDatagram: 1200 },
      logger: createLogger({ level: 'debug', stream }),
    });
    port = (await gateway.listen()).port;
  });

  after(async () => {
    for (const s of dialed) s.destroy();
    await gateway.close();
    target.close();
  });

  test('each stream has its own UDP port; only the target answers reach it', async () => {
    const a = await dial(port);
    const b = await dial(port);
    a.socket.write(Buffer.concat([encodeDatagramPreamble(), encodeDatagramFrame(Buffer.from('a')) as Buffer]));
    b.socket.write(Buffer.concat([encodeDatagramPreamble(), encodeDatagramFrame(Buffer.from('b')) as Buffer]));
    await until('two echoes', () => a.got.length === 1 && b.got.length === 1);
    assert.equal(a.got[0]?.toString(), 'echo:a');
    assert.equal(b.got[0]?.toString(), 'echo:b');
    assert.equal(new Set(sources).size, 2, 'two UDP source ports');
    // A stranger sends to a's UDP port: the connected socket never hands it up.
    const stranger = createSocket('udp4');
    stranger.bind(0, '127.0.0.1');
    await once(stranger, 'listening');
    stranger.send(Buffer.from('spoof'), sources[0] as number, '127.0.0.1');
    a.socket.write(encodeDatagramFrame(Buffer.from('again')) as Buffer);
    await until('the third echo', () => a.got.length === 2);
    assert.deepEqual(
      a.got.map((g) => g.toString()),
      ['echo:a', 'echo:again'],
    );
    stranger.close();
    a.socket.destroy();
    b.socket.destroy();
    await Promise.all([a.closed, b.closed]);
    await until('the gateway to forget both streams', () => gateway.streams === 0);
  });

  test('beyond --max-streams a stream is closed on arrival; quiet streams are closed after --idle-timeout', async () => {
    const a = await dial(port);
    const b = await dial(port);
    await until('two streams', () => gateway.streams === 2);
    const refusedBefore = gateway.stats.streamsRefused;
    const c = await dial(port);
    await c.closed;
    assert.equal(gateway.stats.streamsRefused, refusedBefore + 1);
    // a keeps talking, b says nothing: b goes after the idle timeout (1 s), a stays.
    a.socket.write(encodeDatagramPreamble());
    const keepAlive = setInterval(() => a.socket.write(encodeDatagramFrame(Buffer.from('k')) as Buffer), 200);
    try {
      await b.closed;
      assert.equal(a.socket.destroyed, false);
      assert.ok(gateway.stats.closedIdle >= 1);
      assert.ok(
        logLines.some((l) => /"reason":"idle"/.test(l)),
        logLines.join(''),
      );
    } finally {
      clearInterval(keepAlive);
      a.socket.destroy();
    }
    await a.closed;
  });

  test('a datagram the UDP target cannot take (over --max-datagram) is dropped, the stream goes on; no address in the logs', async () => {
    const a = await dial(port);
    a.socket.write(
      Buffer.concat([encodeDatagramPreamble(), encodeDatagramFrame(Buffer.alloc(1201)) as Buffer, encodeDatagramFrame(Buffer.from('ok')) as Buffer]),
    );
    await until('the echo', () => a.got.length === 1);
    assert.equal(a.got[0]?.toString(), 'echo:ok');
    assert.ok(gateway.stats.droppedOversized >= 1);
    a.socket.destroy();
    await a.closed;
    assert.ok(!logLines.some((l) => l.includes('127.0.0.1')), logLines.join(''));
  });
});
