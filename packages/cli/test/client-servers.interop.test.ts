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
import { AttributeType, MessageBuilder, MessageClass, Method, readAttribute } from '@onionturn/protocol';
import { ProcessGroup, SocksRecorder, freePort, sleep, startServer, type RunningServer, shimArgs } from '@onionturn/testkit';
import { shimPort, spawnClient } from './run-cli.js';
import { stunOverTcp } from './stun-app.js';

const FLOWS = 10;

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
    writeFileSync(join(dir, 'secret'), 'servers-secret\n', { mode: 0o600 });
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
