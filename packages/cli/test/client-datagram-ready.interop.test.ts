// Setup without waiting for a circuit, for UDP that arrives without TURN (issue 14, deliverable 5;
// issue 15's forwards): the real `onionturn client` with a --forward to a UDP echo server through
// a real `onionturn server`, its SOCKS port at a SocksRecorder (which relays, and records every
// stream asked for and what crossed it). After a first source's association the shim holds one
// stream ready; the next source's association starts on it, and its first Allocate goes signed
// with the 401 the held stream asked for ahead: no circuit to build, one round trip fewer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttributeType, FrameKind, MessageClass, Method, StreamFramer, decodeMessage, getAttribute } from '@onionturn/protocol';
import { ProcessGroup, SocksRecorder, freePort, shimArgs, sleep, startServer, waitFor, type RunningServer, type SocksRequestRecord } from '@onionturn/testkit';
import { spawnClient } from './run-cli.js';

const SECRET = 'datagram-ready-secret';

/** The Allocate requests written on a recorded stream, in order: whether each carried a USERNAME. */
function allocatesOn(rec: SocksRequestRecord): boolean[] {
  const out: boolean[] = [];
  const framer = new StreamFramer((frame, kind) => {
    const m = kind === FrameKind.Stun ? decodeMessage(Buffer.from(frame)) : undefined;
    if (m?.ok && m.value.method === Method.Allocate && m.value.messageClass === MessageClass.Request) {
      out.push(getAttribute(m.value, AttributeType.Username) !== undefined);
    }
  });
  for (const c of rec.sent) framer.push(c);
  return out;
}

/** Sends `text` from `from` to the forward and waits for the echo to come back. */
async function roundTrip(from: UdpSocket, port: number, text: string): Promise<void> {
  const back = new Promise<string>((resolve) => from.once('message', (m: Buffer) => resolve(m.toString())));
  // Again every second until the echo comes (the association sets up meanwhile; UDP may drop).
  const timer = setInterval(() => from.send(text, port, '127.0.0.1'), 1000);
  from.send(text, port, '127.0.0.1');
  try {
    const got = await Promise.race([back, sleep(15_000).then(() => assert.fail(`no echo of ${text} within 15 s`))]);
    assert.equal(got, text);
  } finally {
    clearInterval(timer);
  }
}

describe('onionturn client --forward with a stream held ready', () => {
  const group = new ProcessGroup();
  let server: RunningServer;
  let dir: string;
  let echo: UdpSocket;
  const sockets: UdpSocket[] = [];
  let recorder: SocksRecorder | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'onionturn-datagram-ready-'));
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
    echo = createSocket('udp4');
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    echo.bind(0, '127.0.0.1');
    await once(echo, 'listening');
    server = await startServer(group, ['--secret-file', join(dir, 'secret'), '--allow-loopback-peers']);
  });
  after(async () => {
    for (const s of sockets) s.close();
    echo?.close();
    await group.stopAll();
    await recorder?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the next source's association starts on the held stream, its first Allocate signed with that stream's 401", async () => {
    recorder = await SocksRecorder.start();
    const forwardPort = await freePort();
    const cli = spawnClient(
      group,
      [
        '--no-status',
        ...shimArgs({ serverPort: server.tcp, socks: recorder.port, notTor: true }),
        '--upstream-secret-file',
        join(dir, 'secret'),
        '--forward',
        `udp://127.0.0.1:${forwardPort}=127.0.0.1:${echo.address().port}`,
      ],
      { ONIONTURN_LOCAL_PASSWORD: 'unused-here', XDG_CONFIG_HOME: join(dir, 'xdg') },
    );
    await waitFor(
      'the shim listening',
      () => {
        if (cli.child.exitCode !== null) throw new Error(`client exited: ${cli.output()}`);
        return cli.output().includes('"message":"listening"');
      },
      20_000,
      50,
    );
    const rec = recorder;
    const streams = (): SocksRequestRecord[] => rec.requests.filter((r) => r.port === server.tcp);
    assert.equal(streams().length, 0, 'an idle shim opens no stream');
    for (let k = 0; k < 3; k++) {
      const s = createSocket('udp4');
      sockets.push(s);
      s.bind(0, '127.0.0.1');
      await once(s, 'listening');
      await roundTrip(s, forwardPort, `source-${k}`);
      // The first source dialed its own stream and the shim held the next one ready; each later
      // source took the held one, and the shim dialed the next.
      await waitFor(`${k + 2} streams after source ${k}`, () => streams().length === k + 2, 5000, 50);
    }
    await sleep(300);
    assert.equal(streams().length, 4, 'no stream beyond one per source and the one held now');
    const opened = cli
      .output()
      .split('\n')
      .filter((l) => l.includes('datagram flow: TURN stream open'));
    assert.equal(opened.length, 3, cli.output());
    assert.deepEqual(
      opened.map((l) => l.includes('"ready":true')),
      [false, true, true],
      'sources 1 and 2 opened on the stream held ready',
    );
    // The first source's stream: unsigned Allocate, then signed after the 401. A held stream taken:
    // the shim's own probe (unsigned), then the association's Allocate, signed at once.
    const [own, held1, held2] = streams();
    assert.deepEqual(allocatesOn(own as SocksRequestRecord), [false, true]);
    assert.deepEqual(allocatesOn(held1 as SocksRequestRecord), [false, true]);
    assert.deepEqual(allocatesOn(held2 as SocksRequestRecord), [false, true]);
    const exited = once(cli.child, 'exit');
    cli.child.kill('SIGTERM');
    await exited;
  });
});
