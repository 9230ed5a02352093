// The shim over several servers (issue 17): the real `onionturn client` with two --server, one a
// real `onionturn server` and one a port where nothing listens, its SOCKS port at a SocksRecorder
// (which relays, and counts every stream asked for). With --server-choice round-robin or random,
// sequential new flows all reach the live server, and the dead one is dialed at most once: its
// failed dial puts it in backoff, so new flows skip it instead of paying a failed dial each.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatRestUsername, restPassword } from '@onionturn/credentials';
import { AttributeType, MessageBuilder, MessageClass, Method, getAttribute, readAttribute, type StunMessage } from '@onionturn/protocol';
import {
  ProcessGroup,
  SocksRecorder,
  errorCodeOf,
  freePort,
  shimArgs,
  sleep,
  startCoturn,
  startServer,
  waitFor,
  type RunningServer,
  type SocksRequestRecord,
} from '@onionturn/testkit';
import { shimPort, spawnClient } from './run-cli.js';
import { allocateWith, messagesIn, stunOverTcp, stunOverUdp } from './stun-app.js';

const FLOWS = 10;
const SECRET = 'servers-secret';

/** The Allocate requests the shim wrote on a relayed stream, in order: whether each carried a USERNAME. */
function allocatesOn(rec: SocksRequestRecord): { readonly signed: boolean }[] {
  return messagesIn(rec.sent)
    .filter((m) => m.method === Method.Allocate && m.messageClass === MessageClass.Request)
    .map((m) => ({ signed: getAttribute(m, AttributeType.Username) !== undefined }));
}

/** An unauthenticated Allocate: the server answers 401, which shows the flow reached it. */
function allocateRequest(): Buffer {
  return new MessageBuilder(Method.Allocate, MessageClass.Request).add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }).build();
}

describe('onionturn client over two servers, one dead', () => {
  const group = new ProcessGroup();
  let server: RunningServer;
  let dead: number;
  let dir: string;
  const recorders: SocksRecorder[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'onionturn-servers-'));
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
    server = await startServer(group, ['--secret-file', join(dir, 'secret')]);
    dead = await freePort();
  });
  after(async () => {
    await group.stopAll();
    for (const r of recorders) await r.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const choice of ['round-robin', 'random']) {
    test(`--server-choice ${choice}: ${FLOWS} new flows all reach the live server; the dead one costs one failed dial`, async () => {
      const recorder = await SocksRecorder.start();
      recorders.push(recorder);
      const cli = spawnClient(group, [
        '--no-status',
        '--listen',
        '127.0.0.1:0',
        '--server',
        `tcp://127.0.0.1:${dead}`,
        '--server',
        `tcp://127.0.0.1:${server.tcp}`,
        '--server-choice',
        choice,
        '--allow-plaintext-upstream',
        '--allow-non-tor-socks',
        '--socks',
        `127.0.0.1:${recorder.port}`,
      ]);
      const port = await shimPort(cli);
      for (let k = 0; k < FLOWS; k++) {
        const { answer } = await stunOverTcp(port, allocateRequest());
        assert.equal(answer.messageClass, MessageClass.ErrorResponse, `flow ${k}`);
        const error = readAttribute(answer, AttributeType.ErrorCode);
        const value = error?.ok ? error.value : undefined;
        assert.equal(value?.kind === 'error-code' ? value.code : undefined, 401, `flow ${k}: the server's challenge`);
      }
      const to = (p: number): number => recorder.requests.filter((r) => r.port === p).length;
      assert.ok(to(dead) <= 1, `the dead server was dialed ${to(dead)} times`);
      // Every flow opened on the live server (and one stream is held ready for the next flow).
      assert.ok(to(server.tcp) >= FLOWS && to(server.tcp) <= FLOWS + 1, `streams to the live server: ${to(server.tcp)}`);
      // This shim's work is done (the group stops it anyway, also on failure).
      const exited = once(cli.child, 'exit');
      cli.child.kill('SIGTERM');
      await exited;
    });
  }

  // The held stream's challenge (issue 14, setup): while a stream waits ready, the shim asks the
  // server on it for the 401 that an app's first Allocate gets, and answers the next app's first
  // Allocate with it at once, so the app's signed Allocate is the first of its requests to cross
  // Tor (one round trip fewer). The server binds the nonce to that connection: the signed
  // Allocate succeeding shows the nonce was good for the app.
  test("a ready stream's 401, asked for ahead: the app's unauthenticated Allocate never crosses, its signed one succeeds", async () => {
    const recorder = await SocksRecorder.start();
    recorders.push(recorder);
    const cli = spawnClient(group, ['--no-status', ...shimArgs({ serverPort: server.tcp, socks: recorder.port, notTor: true })]);
    const port = await shimPort(cli);
    const username = formatRestUsername(Math.floor(Date.now() / 1000) + 600, 'ready');
    const password = restPassword(SECRET, username);
    // The first flow finds no stream held: its own stream carries both of the app's Allocates.
    assert.equal((await allocateWith(port, username, password)).code, undefined, 'first flow allocated');
    const toServer = (): SocksRequestRecord[] => recorder.requests.filter((r) => r.port === server.tcp);
    assert.deepEqual(allocatesOn(toServer()[0] as SocksRequestRecord), [{ signed: false }, { signed: true }], 'first flow: 401 then the signed Allocate');
    // Then one stream is held, and the shim's own unauthenticated Allocate (the probe) is on it before
    // any app sends; the server's 401 to it has come back.
    await waitFor(
      'the held stream probed',
      async () => toServer().length === 2 && messagesIn((toServer()[1] as SocksRequestRecord).received).length === 1,
      5000,
    );
    await sleep(100); // the shim reads the 401 as it passes
    assert.equal(errorCodeOf(messagesIn((toServer()[1] as SocksRequestRecord).received)[0] as StunMessage), 401);
    const held = toServer()[1] as SocksRequestRecord;
    assert.deepEqual(allocatesOn(held), [{ signed: false }], 'the probe');
    // A second app (another UDP source) takes it: only its signed Allocate follows the probe.
    assert.equal((await allocateWith(port, username, password)).code, undefined, 'second flow allocated with the nonce from the probe');
    assert.deepEqual(allocatesOn(held), [{ signed: false }, { signed: true }], "the app's own unauthenticated Allocate was answered by the shim");
    assert.match(cli.output(), /"ready":true/);
    const exited = once(cli.child, 'exit');
    cli.child.kill('SIGTERM');
    await exited;
  });

  // A server without authentication (coturn --no-auth) allocates on the probe instead of answering
  // 401: that stream is spoiled (its allocation is not the app's), so the shim drops it and holds
  // the server's next streams without a probe; apps still start on them.
  test('a server that allocates without authentication: the probed stream is dropped, later held streams are not probed', async () => {
    const coturn = await startCoturn(group, { verbose: false, extraArgs: ['--no-auth'] });
    const recorder = await SocksRecorder.start();
    recorders.push(recorder);
    const cli = spawnClient(group, ['--no-status', ...shimArgs({ serverPort: coturn.port, socks: recorder.port, notTor: true })]);
    const port = await shimPort(cli);
    const toCoturn = (): SocksRequestRecord[] => recorder.requests.filter((r) => r.port === coturn.port);
    assert.equal((await stunOverUdp(port, allocateRequest())).answer.messageClass, MessageClass.SuccessResponse, 'first flow allocated');
    // The probe's stream got an allocation, not a 401; a stream without a probe follows (after the 5 s retry).
    await waitFor('a held stream without a probe', async () => toCoturn().length === 3, 10_000);
    const [, probed, held] = toCoturn() as [SocksRequestRecord, SocksRequestRecord, SocksRequestRecord];
    assert.equal(messagesIn(probed.received)[0]?.messageClass, MessageClass.SuccessResponse, 'coturn allocated on the probe');
    assert.equal(probed.streams[0]?.destroyed, true, 'the spoiled stream was dropped');
    await sleep(300);
    assert.deepEqual(allocatesOn(held), [], 'the next held stream carries no probe');
    const second = await stunOverUdp(port, allocateRequest());
    assert.equal(second.answer.messageClass, MessageClass.SuccessResponse, 'second flow allocated on the held stream');
    assert.deepEqual(allocatesOn(held), [{ signed: false }], "the app's own Allocate");
    assert.equal(cli.output().match(/"ready":true/g)?.length, 1);
    const exited = once(cli.child, 'exit');
    cli.child.kill('SIGTERM');
    await exited;
  });

  // Setup without waiting for a circuit (issue 14, deliverable 5): after an app's first flow the
  // shim holds one stream to the server ready, and the next flow starts on it, asking the SOCKS
  // port for nothing; with --no-ready-stream every flow asks for its own.
  for (const ready of [true, false]) {
    test(
      ready ? 'a ready stream: the next flow starts on it without a SOCKS request of its own' : '--no-ready-stream: every flow asks for its own stream',
      async () => {
        const recorder = await SocksRecorder.start();
        recorders.push(recorder);
        const cli = spawnClient(group, [
          '--no-status',
          ...shimArgs({ serverPort: server.tcp, socks: recorder.port, notTor: true }),
          ...(ready ? [] : ['--no-ready-stream']),
        ]);
        const port = await shimPort(cli);
        const streams = (): number => recorder.requests.filter((r) => r.port === server.tcp).length;
        assert.equal(streams(), 0, 'an idle shim opens no stream');
        await stunOverTcp(port, allocateRequest());
        await sleep(500);
        assert.equal(streams(), ready ? 2 : 1, 'after the first flow');
        for (let k = 2; k <= 4; k++) {
          const before = streams();
          const { answer } = await stunOverTcp(port, allocateRequest());
          assert.equal(answer.messageClass, MessageClass.ErrorResponse, `flow ${k} reached the server`);
          if (!ready) assert.equal(streams(), before + 1, `flow ${k} asked for its own stream`);
          await sleep(300);
          // With a ready stream the flow took it; the request seen meanwhile is the next ready one.
          if (ready) assert.equal(streams(), before + 1, `flow ${k}: one new stream, the next one made ready`);
        }
        // Said where a user can see it: flows 2-4 opened on the stream held ready.
        const opened = cli
          .output()
          .split('\n')
          .filter((l) => l.includes('flow open'));
        assert.equal(opened.length, 4, cli.output());
        assert.equal(opened.filter((l) => l.includes('"ready":true')).length, ready ? 3 : 0, opened.join('\n'));
        const exited = once(cli.child, 'exit');
        cli.child.kill('SIGTERM');
        await exited;
      },
    );
  }
});
