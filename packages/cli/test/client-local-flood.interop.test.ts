// Local-credential mode under a flood a web page can cause: a `turn:127.0.0.1` iceServer with
// made-up credentials makes a browser send Allocates from fresh source ports. The real `onionturn
// client` must answer every one (401, or 401 again for a wrong password) without making a flow
// or asking its SOCKS port (a SocksRecorder, which relays to coturn) for anything; afterwards a
// real turnutils_uclient with the right local credentials still allocates and relays through it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AttributeType,
  ErrorCode,
  MessageBuilder,
  MessageClass,
  Method,
  decodeMessage,
  longTermKey,
  readAttribute,
  readText,
  type StunMessage,
} from '@onionturn/protocol';
import {
  ProcessGroup,
  SocksRecorder,
  countClientConnections,
  runUclient,
  sleep,
  startCoturn,
  startTurnutilsPeer,
  waitFor,
  type Coturn,
  type Started,
  shimArgs,
} from '@onionturn/testkit';
import { shimPort, spawnClient } from './run-cli.js';

const SECRET = 'local-flood-upstream-secret';
const LOCAL = { username: 'alice', password: 'wonderland', realm: 'onionturn.local' };
const FLOOD = 1000;
const UDP = { kind: 'requested-transport', protocol: 17 } as const;

function errorCode(m: StunMessage): number | undefined {
  const r = readAttribute(m, AttributeType.ErrorCode);
  return r?.ok && r.value.kind === 'error-code' ? r.value.code : undefined;
}

/** A UDP app socket on a fresh port that asks the shim one request at a time. */
class App {
  readonly sock: UdpSocket = createSocket('udp4');
  constructor(private readonly shimPort: number) {
    this.sock.on('error', () => {});
  }
  async bind(): Promise<number> {
    this.sock.bind(0, '127.0.0.1');
    await once(this.sock, 'listening');
    return this.sock.address().port;
  }
  async ask(msg: Buffer): Promise<StunMessage> {
    const reply = once(this.sock, 'message') as Promise<[Buffer]>;
    this.sock.send(msg, this.shimPort, '127.0.0.1');
    const [data] = await Promise.race([reply, sleep(5000).then(() => Promise.reject(new Error('no answer from the shim within 5 s')))]);
    const r = decodeMessage(data);
    if (!r.ok) throw new Error(r.error.reason);
    return r.value;
  }
}

function signed(method: number, nonce: string, password: string): Buffer {
  const b = new MessageBuilder(method, MessageClass.Request);
  if (method === Method.Allocate) b.add(AttributeType.RequestedTransport, UDP);
  return b
    .add(AttributeType.Username, { kind: 'text', text: LOCAL.username })
    .add(AttributeType.Realm, { kind: 'text', text: LOCAL.realm })
    .add(AttributeType.Nonce, { kind: 'text', text: nonce })
    .build({ integrityKey: longTermKey(LOCAL.username, LOCAL.realm, password) });
}

/** Runs `each` for `count` apps on distinct source ports, `parallel` at a time; all stay bound until the end. */
async function fromFreshPorts<T>(
  shimPort: number,
  count: number,
  parallel: number,
  each: (app: App) => Promise<T>,
): Promise<{ results: T[]; ports: Set<number> }> {
  const apps: App[] = [];
  const results: T[] = [];
  const ports = new Set<number>();
  try {
    for (let i = 0; i < count; i += parallel) {
      const batch = Array.from({ length: Math.min(parallel, count - i) }, () => new App(shimPort));
      apps.push(...batch);
      results.push(
        ...(await Promise.all(
          batch.map(async (app) => {
            ports.add(await app.bind());
            return each(app);
          }),
        )),
      );
    }
  } finally {
    for (const a of apps) a.sock.close();
  }
  return { results, ports };
}

describe('onionturn client in local-credential mode: unauthenticated floods make no flows', () => {
  const group = new ProcessGroup();
  let coturn: Coturn;
  let peerPort: number;
  let recorder: SocksRecorder | undefined;
  let cli: Started;
  let port: number;
  let dir: string;
  let stderr = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'onionturn-local-flood-'));
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
    coturn = await startCoturn(group, { secrets: [SECRET], verbose: false });
    peerPort = (await startTurnutilsPeer(group)).port;
    recorder = await SocksRecorder.start();
    cli = spawnClient(group, [
      '--no-status',
      ...shimArgs({ serverPort: coturn.port, socks: recorder.port, notTor: true }),
      '--upstream-secret-file',
      join(dir, 'secret'),
      '--local-user',
      LOCAL.username,
      '--local-password',
      LOCAL.password,
    ]);
    cli.child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    port = await shimPort(cli);
  });
  after(async () => {
    await group.stopAll();
    await recorder?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test(`${FLOOD} unauthenticated Allocates, wrong passwords, signed Bindings and Refreshes from fresh ports: all answered, no flow, no SOCKS; then uclient relays`, async () => {
    const bare = (): Buffer => new MessageBuilder(Method.Allocate, MessageClass.Request).add(AttributeType.RequestedTransport, UDP).build();
    // (a) Every unauthenticated Allocate gets its 401 with the local REALM and a NONCE. Before the
    // fix each one took a flow slot, and past the 256th there was no answer at all.
    const flood = await fromFreshPorts(port, FLOOD, 100, (app) => app.ask(bare()));
    assert.equal(flood.ports.size, FLOOD, 'distinct source ports');
    for (const m of flood.results) {
      assert.equal(errorCode(m), ErrorCode.Unauthorized);
      assert.equal(readText(m, AttributeType.Realm), LOCAL.realm);
      assert.ok(readText(m, AttributeType.Nonce));
    }
    // The whole long-term handshake with a wrong password: 401 again, still no flow.
    const wrong = await fromFreshPorts(port, 50, 25, async (app) => {
      const nonce = readText(await app.ask(bare()), AttributeType.Nonce) ?? '';
      return errorCode(await app.ask(signed(Method.Allocate, nonce, 'not-it')));
    });
    assert.deepEqual(new Set(wrong.results), new Set([401]));
    // Signed with the right password, but nothing that needs a relay: answered by the shim alone.
    const others = await fromFreshPorts(port, 20, 20, async (app) => {
      const nonce = readText(await app.ask(bare()), AttributeType.Nonce) ?? '';
      const binding = await app.ask(signed(Method.Binding, nonce, LOCAL.password));
      const refresh = await app.ask(signed(Method.Refresh, nonce, LOCAL.password));
      return `${binding.messageClass === MessageClass.SuccessResponse ? 'ok' : String(errorCode(binding))}/${String(errorCode(refresh))}`;
    });
    assert.deepEqual(new Set(others.results), new Set(['ok/437']));

    // (b) Nothing asked the SOCKS port, no connection to it, no flow opened.
    await sleep(200);
    assert.equal(recorder?.requests.length, 0, 'no SOCKS request');
    assert.equal(countClientConnections(recorder?.port ?? 0), 0, 'no SOCKS connection');
    assert.doesNotMatch(stderr, /"message":"flow open"/);
    // The user hears about the wrong password, once (the rest counted until the next minute).
    assert.equal(stderr.match(/app authentication failed: wrong local username or password \(401\)/g)?.length, 1, stderr.slice(-2000));

    // (c) The real app with the right local credentials: allocations, channels, relay to the peer.
    const r = await runUclient(group, {
      server: { host: '127.0.0.1', port },
      peer: { host: '127.0.0.1', port: peerPort },
      username: LOCAL.username,
      password: LOCAL.password,
      tcp: false,
      noRtcp: true,
      messages: 30,
      clients: 1,
      intervalMs: 10,
    });
    assert.equal(r.sent, 30, r.output.slice(-1500) + '\n--- shim:\n' + stderr.slice(-2000));
    assert.equal(r.received, 30, r.output.slice(-800));
    const dialed = recorder?.requests.length ?? 0;
    // One stream per uclient allocation (one or two), and one held ready for the next flow.
    assert.ok(dialed >= 1 && dialed <= 3, `one stream per uclient allocation (${dialed})`);
    assert.ok(recorder?.requests.every((q) => q.port === coturn.port));

    // The counters at exit: the uclient's flows and no other; every refusal counted.
    cli.child.kill('SIGTERM');
    await waitFor('client exit', () => cli.child.exitCode !== null, 5000);
    assert.equal(cli.child.exitCode, 0, cli.output());
    const stopped = stderr
      .split('\n')
      .filter((l) => l.includes('"message":"stopped"'))
      .map((l) => JSON.parse(l) as { stats: Record<string, number> })[0];
    assert.ok(stopped, stderr.slice(-2000));
    const s = stopped.stats;
    // Every stream dialed carried a flow, but the one still held ready at exit.
    assert.ok(s['flowsOpened'] === dialed || s['flowsOpened'] === dialed - 1, `flows ${s['flowsOpened']}, streams ${dialed}: ${JSON.stringify(s)}`);
    assert.equal(s['flowLimitRefused'], 0);
    assert.equal(s['upstreamFailures'], 0);
    assert.ok((s['challengesAnswered'] ?? 0) >= FLOOD + 50 + 20, JSON.stringify(s));
    assert.equal(s['authFailures'], 50);
    assert.equal(s['bindingsAnswered'], 20);
    assert.equal(s['noAllocationAnswered'], 20);
  });
});
