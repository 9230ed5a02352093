// Local-credential mode answers STUN Binding itself: the real `onionturn client` with its SOCKS
// port at a SocksRecorder (which counts every stream the shim asks for) answers coturn's
// turnutils_stunclient and Bindings over UDP and TCP, and asks for no stream. An authenticated
// Allocate afterwards does get one: the recorder would have seen a Binding dial.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttributeType, MessageBuilder, MessageClass, Method, readAddressAttribute, readAttribute, verifyFingerprint } from '@onionturn/protocol';
import {
  ProcessGroup,
  SocksRecorder,
  TOOLS,
  requireTool,
  runStunclient,
  sleep,
  startCoturn,
  waitFor,
  type Coturn,
  type Started,
  shimArgs,
} from '@onionturn/testkit';
import { shimPort, spawnClient } from './run-cli.js';
import { allocateWith, stunOverTcp, stunOverUdp } from './stun-app.js';

const SECRET = 'local-binding-upstream-secret';

/** Waits until the socket can take more or is gone (a reset ends the test's flood). */
function drainedOrClosed(sock: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      sock.off('drain', done);
      sock.off('close', done);
      resolve();
    };
    sock.on('drain', done);
    sock.on('close', done);
  });
}

describe('onionturn client in local-credential mode answers Binding without Tor', () => {
  const group = new ProcessGroup();
  let coturn: Coturn;
  let recorder: SocksRecorder | undefined;
  let cli: Started;
  let port: number;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'onionturn-local-binding-'));
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
    coturn = await startCoturn(group, { secrets: [SECRET], verbose: false });
    recorder = await SocksRecorder.start();
    cli = spawnClient(group, [
      '--no-status',
      ...shimArgs({ serverPort: coturn.port, socks: recorder.port, notTor: true }),
      '--upstream-secret-file',
      join(dir, 'secret'),
      '--local-user',
      'alice',
      '--local-password',
      'wonderland',
    ]);
    port = await shimPort(cli);
  });
  after(async () => {
    await group.stopAll();
    await recorder?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('--local-password typed on the command line is warned about (it shows in ps), not echoed in the warning', () => {
    const warnings = cli
      .output()
      .split('\n')
      .filter((l) => l.startsWith('onionturn: warning:'));
    assert.ok(
      warnings.some((l) => l.includes('--local-password shows the password to every user via ps')),
      warnings.join('\n'),
    );
    for (const w of warnings) assert.doesNotMatch(w, /wonderland/);
  });

  test('turnutils_stunclient, UDP and TCP Bindings (with and without FINGERPRINT) are answered with the app address; no SOCKS request', async () => {
    const r = await runStunclient(group, { host: '127.0.0.1', port });
    assert.equal(r.exitCode, 0, r.output);
    assert.equal(r.reflexive?.address, '127.0.0.1', r.output);

    for (const fingerprint of [false, true]) {
      const request = new MessageBuilder(Method.Binding, MessageClass.Request).build({ fingerprint });
      for (const [transport, ask] of [
        ['udp', stunOverUdp],
        ['tcp', stunOverTcp],
      ] as const) {
        const { answer, localPort } = await ask(port, request);
        const what = `${transport}, fingerprint ${fingerprint}`;
        assert.equal(answer.messageClass, MessageClass.SuccessResponse, what);
        assert.deepEqual(readAddressAttribute(answer, AttributeType.XorMappedAddress), { family: 'IPv4', address: '127.0.0.1', port: localPort }, what);
        assert.equal(answer.fingerprintOffset >= 0, fingerprint, what);
        if (fingerprint) assert.equal(verifyFingerprint(answer), 'ok', what);
        assert.equal(readAttribute(answer, AttributeType.Software), undefined, `${what}: no SOFTWARE`);
      }
    }
    assert.equal(recorder?.requests.length, 0, 'no Binding asked the SOCKS port for a stream');
    assert.doesNotMatch(cli.output(), /"message":"flow open"/);
  });

  test('a TCP app that writes Bindings and never reads is disconnected; the shim stays small and serves others', async () => {
    const rssKb = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${cli.pid}/status`, 'utf8'))?.[1]);
    const before = rssKb();
    const sock = connect(port, '127.0.0.1');
    sock.on('error', () => undefined);
    await once(sock, 'connect');
    sock.pause(); // never read: the answers pile up in the kernel, then in the shim
    const request = new MessageBuilder(Method.Binding, MessageClass.Request).build();
    const chunk = Buffer.concat(Array.from({ length: 5000 }, () => request)); // 100 kB of Bindings
    let written = 0;
    let closed = false;
    sock.on('close', () => (closed = true));
    for (let i = 0; i < 400 && !closed; i++) {
      // 40 MB in all at most; an unbounded shim would hold well over 100 MB of answers by then.
      if (!sock.write(chunk)) await drainedOrClosed(sock);
      written += chunk.length;
    }
    await waitFor('the shim to close the connection', () => closed, 20_000, 50);
    const grewMb = (rssKb() - before) / 1024;
    assert.ok(grewMb < 60, `the shim grew by ${grewMb.toFixed(1)} MB after ${(written / 1e6).toFixed(1)} MB of unread Bindings`);
    const { answer } = await stunOverTcp(port, request);
    assert.equal(answer.messageClass, MessageClass.SuccessResponse, 'another app is still answered');
  });

  test('a datagram from source port 0 (raw socket) is dropped; the shim lives on', async () => {
    // Node cannot send from port 0; a raw socket (root, as the tests run) can. The UDP checksum
    // 0 means "none" for IPv4.
    const stun = new MessageBuilder(Method.Binding, MessageClass.Request).build().toString('hex');
    const py = [
      'import socket, struct, sys',
      `payload = bytes.fromhex('${stun}')`,
      `udp = struct.pack('!HHHH', 0, ${port}, 8 + len(payload), 0) + payload`,
      's = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)',
      "s.sendto(udp, ('127.0.0.1', 0))",
    ].join('\n');
    const sent = spawnSync(requireTool(TOOLS.python3), ['-c', py], { encoding: 'utf8' });
    assert.equal(sent.status, 0, `raw send failed (needs root): ${sent.stderr}`);
    await sleep(300);
    assert.equal(cli.child.exitCode, null, `the shim died: ${cli.output().slice(-1500)}`);
    const { answer } = await stunOverUdp(port, new MessageBuilder(Method.Binding, MessageClass.Request).build());
    assert.equal(answer.messageClass, MessageClass.SuccessResponse, 'and still answers');
  });

  test('the control: an authenticated Allocate does open a stream through the same SOCKS port', async () => {
    const before = recorder?.requests.length ?? 0;
    const r = await allocateWith(port, 'alice', 'wonderland');
    assert.equal(r.code, undefined, `Allocate succeeded upstream: ${cli.output().slice(-1500)}`);
    // Its own stream, and perhaps already the one the shim holds ready for the next flow.
    const opened = (recorder?.requests ?? []).slice(before);
    assert.ok(opened.length >= 1 && opened.length <= 2, `streams opened: ${opened.length}`);
    assert.ok(opened.every((q) => q.port === coturn.port));
  });
});
