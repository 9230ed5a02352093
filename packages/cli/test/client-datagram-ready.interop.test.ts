// Setup without waiting for a circuit, for UDP that arrives without TURN (issue 14, deliverable 5;
// issue 15's forwards): the real `onionturn client` with a --forward to a UDP echo server through
// a real `onionturn server`, and through coturn's `turnserver` (an independent TURN server: REST
// credentials from the same secret), its SOCKS port at a SocksRecorder (which relays, and records
// every stream asked for and what crossed it). After a first source's association the shim holds
// one stream ready; the next source's association starts on it, and its first Allocate goes signed
// with the 401 the held stream asked for ahead: no circuit to build, one round trip fewer. Its
// first datagram goes right behind the CreatePermission (a Send indication): both servers relay it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttributeType, ErrorCode, MessageClass, Method, getAttribute, readErrorCode } from '@onionturn/protocol';
import { ProcessGroup, SocksRecorder, freePort, shimArgs, sleep, startCoturn, startServer, waitFor, type SocksRequestRecord } from '@onionturn/testkit';
import { spawnClient } from './run-cli.js';
import { messagesIn } from './stun-app.js';

const SECRET = 'datagram-ready-secret';

/** The Allocate requests written on a recorded stream, in order: whether each carried a USERNAME. */
function allocatesOn(rec: SocksRequestRecord): boolean[] {
  return messagesIn(rec.sent)
    .filter((m) => m.method === Method.Allocate && m.messageClass === MessageClass.Request)
    .map((m) => getAttribute(m, AttributeType.Username) !== undefined);
}

/** A shim with a --forward to `to` through a SocksRecorder to the TURN server at `serverPort`, listening. */
async function forwardingShim(group: ProcessGroup, dir: string, serverPort: number, socksPort: number, forwardPort: number, to: number) {
  const cli = spawnClient(
    group,
    [
      '--no-status',
      ...shimArgs({ serverPort, socks: socksPort, notTor: true }),
      '--upstream-secret-file',
      join(dir, 'secret'),
      '--forward',
      `udp://127.0.0.1:${forwardPort}=127.0.0.1:${to}`,
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
  return cli;
}

/** Sends `text` from `from` to the forward and waits for the echo to come back. */
async function roundTrip(from: UdpSocket, port: number, text: string): Promise<void> {
  let onMessage: ((m: Buffer) => void) | undefined;
  // Echoes of earlier sends may still come: only this text's counts.
  const back = new Promise<void>((resolve) => {
    onMessage = (m: Buffer) => {
      if (m.toString() === text) resolve();
    };
    from.on('message', onMessage);
  });
  // Again every second until the echo comes (the association sets up meanwhile; UDP may drop).
  const timer = setInterval(() => from.send(text, port, '127.0.0.1'), 1000);
  from.send(text, port, '127.0.0.1');
  let deadline: NodeJS.Timeout | undefined;
  try {
    await Promise.race([back, new Promise((_, reject) => (deadline = setTimeout(() => reject(new Error(`no echo of ${text} within 15 s`)), 15_000)))]);
  } finally {
    clearInterval(timer);
    clearTimeout(deadline);
    if (onMessage) from.off('message', onMessage);
  }
}

describe('onionturn client --forward with a stream held ready', () => {
  const group = new ProcessGroup();
  let dir: string;
  let echo: UdpSocket;
  const sockets: UdpSocket[] = [];
  const recorders: SocksRecorder[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'onionturn-datagram-ready-'));
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
    echo = createSocket('udp4');
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    echo.bind(0, '127.0.0.1');
    await once(echo, 'listening');
  });
  after(async () => {
    for (const s of sockets) s.close();
    echo?.close();
    await group.stopAll();
    for (const r of recorders) await r.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const kind of ['onionturn server', "coturn's turnserver"] as const) {
    test(`${kind}: the next source's association starts on the held stream, its first Allocate signed with that stream's 401`, async () => {
      const serverPort =
        kind === 'onionturn server'
          ? (await startServer(group, ['--secret-file', join(dir, 'secret'), '--allow-loopback-peers'])).tcp
          : (await startCoturn(group, { secrets: [SECRET], verbose: false })).port;
      const recorder = await SocksRecorder.start();
      recorders.push(recorder);
      const forwardPort = await freePort();
      const cli = await forwardingShim(group, dir, serverPort, recorder.port, forwardPort, echo.address().port);
      const streams = (): SocksRequestRecord[] => recorder.requests.filter((r) => r.port === serverPort);
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
      // the shim's own probe (unsigned), then only signed ones (coturn, without mobility, gets the
      // Allocate again without the ticket it refuses).
      const [own, held1, held2] = streams() as [SocksRequestRecord, SocksRequestRecord, SocksRequestRecord];
      assert.deepEqual(allocatesOn(own).slice(0, 2), [false, true]);
      for (const held of [held1, held2]) {
        const a = allocatesOn(held);
        assert.ok(
          a.length >= 2 && a[0] === false && a.slice(1).every((signed) => signed),
          `the Allocates on a taken held stream (signed?): ${JSON.stringify(a)}`,
        );
      }
      const exited = once(cli.child, 'exit');
      cli.child.kill('SIGTERM');
      await exited;
    });
  }

  // Mobility (RFC 8016) for an association: its stream is lost (the recorder closes it, as a failed
  // circuit would); the take-over starts on the stream held ready, whose 401 signs the Refresh, so
  // the allocation moves in one round trip: no circuit to build, no 438 for the new connection.
  test('a lost stream: the association takes its allocation over on the held stream, the peer hears the same relay address', async () => {
    const server = await startServer(group, ['--secret-file', join(dir, 'secret'), '--allow-loopback-peers']);
    const recorder = await SocksRecorder.start();
    recorders.push(recorder);
    const peer = createSocket('udp4');
    sockets.push(peer);
    const relays = new Set<string>();
    peer.on('message', (m, r) => {
      relays.add(`${r.address}:${r.port}`);
      peer.send(m, r.port, r.address);
    });
    peer.bind(0, '127.0.0.1');
    await once(peer, 'listening');
    const forwardPort = await freePort();
    const cli = await forwardingShim(group, dir, server.tcp, recorder.port, forwardPort, peer.address().port);
    const streams = (): SocksRequestRecord[] => recorder.requests.filter((r) => r.port === server.tcp);
    const app = createSocket('udp4');
    sockets.push(app);
    app.bind(0, '127.0.0.1');
    await once(app, 'listening');
    await roundTrip(app, forwardPort, 'before');
    await waitFor('a stream held ready', () => streams().length === 2, 5000, 50);
    const [own, held] = streams() as [SocksRequestRecord, SocksRequestRecord];
    for (const s of own.streams) s.destroy();
    await waitFor('the take-over', () => cli.output().includes('allocation taken over on a new circuit'), 10_000, 50);
    await roundTrip(app, forwardPort, 'after');
    assert.equal(relays.size, 1, `the peer heard one relay address: ${[...relays].join(', ')}`);
    const moves = messagesIn(held.sent).filter((m) => m.method === Method.Refresh && getAttribute(m, AttributeType.MobilityTicket) !== undefined);
    assert.equal(moves.length, 1, 'the take-over Refresh went on the held stream');
    const stale = messagesIn(held.received).filter((m) => readErrorCode(m)?.code === ErrorCode.StaleNonce);
    assert.deepEqual(stale, [], "signed with the held stream's nonce: no 438 first");
    assert.doesNotMatch(cli.output(), /datagram flow closed/);
    const exited = once(cli.child, 'exit');
    cli.child.kill('SIGTERM');
    await exited;
  });
});
