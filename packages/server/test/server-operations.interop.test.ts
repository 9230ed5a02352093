// Running `onionturn server` as an operator would: TLS listener (coturn's client over TLS),
// Prometheus metrics, SIGHUP secret rotation that keeps allocations, SIGTERM, and bad config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { restPassword } from '@onionturn/credentials';
import {
  AttributeType,
  MessageBuilder,
  MessageClass,
  Method,
  StreamFramer,
  decodeMessage,
  longTermKey,
  readAttribute,
  readText,
  type StunMessage,
} from '@onionturn/protocol';
import { freePort, ProcessGroup, runCli, runUclient, sleep, startServer, startTurnutilsPeer, testTempDir, waitFor } from '@onionturn/testkit';

const REALM = 'onionturn';

/** A raw TURN-over-TCP client holding one allocation with REST credentials. */
class Holder {
  readonly messages: StunMessage[] = [];
  closed = false;
  nonce = '';
  readonly #framer = new StreamFramer((f) => {
    const d = decodeMessage(Buffer.from(f));
    if (d.ok) this.messages.push(d.value);
  });
  constructor(
    readonly sock: Socket,
    readonly username: string,
    readonly password: string,
  ) {
    sock.on('data', (c: Buffer) => this.#framer.push(c));
    sock.on('close', () => (this.closed = true));
    sock.on('error', () => undefined);
  }
  async ask(method: number, attrs: (b: MessageBuilder) => void): Promise<StunMessage> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const b = new MessageBuilder(method, MessageClass.Request);
      attrs(b);
      if (this.nonce) {
        b.add(AttributeType.Username, { kind: 'text', text: this.username })
          .add(AttributeType.Realm, { kind: 'text', text: REALM })
          .add(AttributeType.Nonce, { kind: 'text', text: this.nonce });
      }
      const n = this.messages.length;
      this.sock.write(b.build(this.nonce ? { integrityKey: longTermKey(this.username, REALM, this.password) } : {}));
      await waitFor('a response', () => this.messages.length > n || this.closed, 3000, 10);
      const r = this.messages[n];
      if (!r) throw new Error('connection closed');
      const e = readAttribute(r, AttributeType.ErrorCode);
      const code = e?.ok && e.value.kind === 'error-code' ? e.value.code : 0;
      if ((code === 401 && !this.nonce) || code === 438) {
        this.nonce = readText(r, AttributeType.Nonce) ?? '';
        continue;
      }
      return r;
    }
    throw new Error('no answer after the nonce');
  }
}

function udp(b: MessageBuilder): void {
  b.add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 });
}

test('TLS listener with coturn client, metrics, SIGHUP rotation keeping allocations, SIGTERM exit 0', async (t) => {
  const dir = testTempDir(t);
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, 'first-secret-aaaa\n', { mode: 0o600 });
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1', '-keyout', key, '-out', cert], {
    stdio: 'ignore',
  });
  const metricsPort = await freePort();
  const credentialsPort = await freePort();
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const [server, peer] = await Promise.all([
    startServer(group, [
      '--listen',
      'tls://127.0.0.1:0',
      '--cert',
      cert,
      '--key',
      key,
      '--secret-file',
      secretFile,
      '--allow-loopback-peers',
      '--metrics',
      `127.0.0.1:${metricsPort}`,
      '--credentials-listen',
      `127.0.0.1:${credentialsPort}`,
    ]),
    startTurnutilsPeer(group),
  ]);
  const tlsPort = server.ports['tls'];
  assert.ok(tlsPort, `no tls listener in ${JSON.stringify(server.ports)}`);

  await t.test('coturn client over TLS (-S -t) relays through the TLS listener', async () => {
    const run = await runUclient(group, {
      server: { host: '127.0.0.1', port: tlsPort },
      secret: 'first-secret-aaaa',
      peer: { host: peer.host, port: peer.port },
      messages: 10,
      extraArgs: ['-c', '-S'],
    });
    assert.equal(run.exitCode, 0, run.output.slice(-1500));
    assert.equal(run.sent, 10);
    assert.equal(run.received, 10);
  });

  await t.test('metrics: allocations, relayed bytes and packets by direction, errors by code, no usernames', async () => {
    const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const value = (re: RegExp): number => Number(re.exec(body)?.[1] ?? NaN);
    assert.ok(value(/^onionturn_allocations_created_total (\d+)/m) >= 1, body);
    assert.ok(value(/^onionturn_relayed_bytes_total\{direction="to_peer"\} (\d+)/m) >= 1000, body);
    assert.ok(value(/^onionturn_relayed_packets_total\{direction="to_client"\} (\d+)/m) >= 10, body);
    assert.ok(value(/^onionturn_error_responses_total\{code="401"\} (\d+)/m) >= 1, body);
    assert.match(body, /^onionturn_allocations \d+/m);
    assert.doesNotMatch(body, /user/i);
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status, 404);
  });

  const expiry = Math.floor(Date.now() / 1000) + 3600;
  const user = `${expiry}:holder`;
  const sock = connect(server.tcp, '127.0.0.1');
  await once(sock, 'connect');
  t.after(() => sock.destroy());
  const holder = new Holder(sock, user, restPassword('first-secret-aaaa', user));

  await t.test('SIGHUP: a new secret applies to new allocations; existing ones stay and refresh', async () => {
    const allocated = await holder.ask(Method.Allocate, udp);
    assert.equal(allocated.messageClass, MessageClass.SuccessResponse);
    writeFileSync(secretFile, 'second-secret-bbbb\n', { mode: 0o600 });
    server.process.child.kill('SIGHUP');
    await waitFor('the reload log line', () => server.process.output().includes('"message":"reloaded"'), 5000, 20);
    const refreshed = await holder.ask(Method.Refresh, () => undefined);
    assert.equal(refreshed.messageClass, MessageClass.SuccessResponse, 'allocation kept across SIGHUP');
    const s = { host: '127.0.0.1', port: server.tcp };
    const p = { host: peer.host, port: peer.port };
    const oldSecret = await runUclient(group, { server: s, secret: 'first-secret-aaaa', peer: p, messages: 3, extraArgs: ['-c'] });
    assert.ok(oldSecret.allocationFailed || oldSecret.exitCode !== 0, `old secret still allocates:\n${oldSecret.output.slice(-800)}`);
    const newSecret = await runUclient(group, { server: s, secret: 'second-secret-bbbb', peer: p, messages: 3, extraArgs: ['-c'] });
    assert.equal(newSecret.received, 3, newSecret.output.slice(-800));
    // The built-in credential endpoint signs with the new secret too.
    const served = (await (await fetch(`http://127.0.0.1:${credentialsPort}/credentials`)).json()) as { username: string; password: string };
    assert.equal(served.password, restPassword('second-secret-bbbb', served.username));
    const viaServed = await runUclient(group, { server: s, username: served.username, password: served.password, peer: p, messages: 3, extraArgs: ['-c'] });
    assert.equal(viaServed.received, 3, viaServed.output.slice(-800));
  });

  await t.test('SIGTERM: allocations closed, connections dropped, exit 0', async () => {
    const exited = once(server.process.child, 'close'); // 'close': its last log lines are read below
    server.process.child.kill('SIGTERM');
    const [code] = (await Promise.race([exited, sleep(5000).then(() => ['timeout'])])) as [number | string];
    assert.equal(code, 0, server.process.output().slice(-1000));
    await waitFor('the held connection to close', () => holder.closed, 2000, 10);
    assert.match(server.process.output(), /"message":"server-stopped"/);
  });
});

test('bad configuration: one line on stderr, exit 2, nothing started', async (t) => {
  const dir = testTempDir(t);
  const cfg = join(dir, 'bad.json');
  writeFileSync(cfg, JSON.stringify({ user: ['a:b'], bogusKey: 1 }));
  const good = join(dir, 'good.json');
  writeFileSync(good, JSON.stringify({ user: ['a:b'], relayPorts: '9-3' }));
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['server', '--user', 'a:b', '--relay-ports', '5000-4000'], {}, /--relay-ports/],
    [['server', '--user', 'a:b', '--peer-policy', 'reject 0x7f.0.0.1:*'], {}, /0x7f\.0\.0\.1/],
    [['server', '--user', 'a:b', '--listen', 'tls://127.0.0.1:0'], {}, /--cert/],
    [['server', '--user', 'a:b', '--listen', 'sctp://127.0.0.1:1'], {}, /listen/],
    [['server'], {}, /no credentials/],
    [['server', '--user', 'nopassword'], {}, /NAME:PASSWORD/],
    [['server', '--config', cfg], {}, /bogusKey|bogus-key/i],
    [['server', '--config', good], {}, /--relay-ports/],
    [['server', '--user', 'a:b'], { ONIONTURN_FILTERING: 'bogus' }, /filtering/],
    [['server', '--user', 'a:b', '--max-channels', '0'], {}, /--max-channels/],
    [['server', '--user', 'a:b', '--metrics', 'nowhere'], {}, /listen address/],
    [['server', '--user', 'a:b', '--listen', 'tcp://0.0.0.0:0'], {}, /--relay-ip/],
    [['server', '--user', 'a:b', '--listen', '127.0.0.1:3478'], {}, /say which transport: tcp:\/\/127\.0\.0\.1:3478/],
    [['server', '--user', 'a:b', '--allow-peer', '*:*'], {}, /--allow-peer '\*:\*': name an address range/],
    [['server', '--user', 'a:b', '--allow-peer', '10.0.0.0/33'], {}, /--allow-peer '10\.0\.0\.0\/33'.*CIDR\[:PORTS\]/],
    [['server', '--user', 'a:b', '--relay-ports', '50000-50001', '--workers', '3'], {}, /--relay-ports 50000-50001 has fewer ports than --workers 3/],
  ];
  for (const [args, env, want] of cases) {
    const r = await runCli(args, { env });
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, want, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: more than one line:\n${r.stderr}`);
  }
});
