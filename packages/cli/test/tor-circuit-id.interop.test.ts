// The PROXY path through a real onion service (issue 13): on the private Tor network, an onion
// service tor with `HiddenServiceExportCircuitID haproxy` forwards to `onionturn server
// --tor-circuit-id`. Every onion client reaches the server from 127.0.0.1; the server must tell
// them apart by circuit. Two clients on different circuits (different SOCKS credentials, so tor's
// IsolateSOCKSAuth builds each its own) ask for their address with a STUN Binding while a call
// relays through `onionturn client` over the same onion service: the server names each by its
// own circuit (fc00:dead:beef:4dad::/64 with the circuit id, the identity its per-client limits
// key on), and the call relays with no loss.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { socksConnect } from '@onionturn/client';
import { AttributeType, MessageBuilder, MessageClass, Method, StreamFramer, decodeMessage, readAddressAttribute } from '@onionturn/protocol';
import {
  ProcessGroup,
  TOOLS,
  freePort,
  requireTool,
  runUclient,
  startServer,
  startTorNetwork,
  startTurnutilsPeer,
  waitFor,
  type RunningServer,
  type Started,
  type TorNetwork,
} from '@onionturn/testkit';
import { spawnClient } from './run-cli.js';
import { testNetworkConfig } from './testnet-torrc.js';

const SECRET = 'tor-circuit-id-secret';
const ONION_PORT = 3478;
/** The onion service's port for the server's credential endpoint (--credentials-listen reads the PROXY line too). */
const CREDENTIALS_PORT = 80;

/** GET /credentials on the onion service through Tor, on the circuit of SOCKS user `who`: the HTTP status. */
async function credentialStatus(net: TorNetwork, hostname: string, who: string): Promise<number> {
  const r = await socksConnect({
    proxy: { host: '127.0.0.1', port: net.socksPort },
    target: { host: hostname, port: CREDENTIALS_PORT },
    auth: { username: who, password: who },
    timeoutMs: 30_000,
  });
  if (!r.ok) throw new Error(r.error.reason);
  const sock = r.socket;
  let text = r.head.toString('latin1');
  sock.on('data', (c: Buffer) => (text += c.toString('latin1')));
  sock.on('error', () => undefined);
  const closed = new Promise((resolve) => sock.once('close', resolve));
  sock.resume();
  sock.write(`GET /credentials HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`);
  await closed;
  return Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0);
}

/** One STUN Binding to the onion service through Tor, on the circuit of SOCKS user `who`: the address the server saw. */
async function mappedVia(net: TorNetwork, hostname: string, who: string): Promise<string> {
  const r = await socksConnect({
    proxy: { host: '127.0.0.1', port: net.socksPort },
    target: { host: hostname, port: ONION_PORT },
    auth: { username: who, password: who },
    timeoutMs: 30_000,
  });
  if (!r.ok) throw new Error(r.error.reason);
  const sock = r.socket;
  try {
    const req = new MessageBuilder(Method.Binding, MessageClass.Request);
    const answer = new Promise<string>((resolve, reject) => {
      const framer = new StreamFramer((frame) => {
        const m = decodeMessage(frame);
        const a = m.ok ? readAddressAttribute(m.value, AttributeType.XorMappedAddress) : undefined;
        if (a) resolve(a.address);
        else reject(new Error('no XOR-MAPPED-ADDRESS in the answer'));
      });
      sock.on('data', (c: Buffer) => void framer.push(c));
      sock.once('close', () => reject(new Error('closed before an answer')));
      sock.once('error', reject);
    });
    if (r.head.length > 0) sock.unshift(r.head);
    sock.resume();
    sock.write(req.build({ fingerprint: true }));
    return await answer;
  } finally {
    sock.destroy();
  }
}

describe('PROXY header through a real onion service (HiddenServiceExportCircuitID haproxy)', () => {
  const group = new ProcessGroup();
  let net: TorNetwork | undefined;
  let dir: string;
  let server: RunningServer;
  let onionTor: Started;
  let hostname: string;

  before(async () => {
    const tor = requireTool(TOOLS.tor);
    dir = mkdtempSync(join(tmpdir(), 'onionturn-circuit-id-'));
    // Four relays: an onion service needs them (the network's own onion service is not used).
    net = await startTorNetwork({ onion: {}, timeoutMs: 180_000 });
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
    const credentialsPort = await freePort();
    server = await startServer(
      group,
      ['--secret-file', join(dir, 'secret'), '--tor-circuit-id', '--allow-loopback-peers', '--credentials-listen', `127.0.0.1:${credentialsPort}`],
      {},
      {
        listen: ['tcp://127.0.0.1:0'],
      },
    );
    const hsDir = join(dir, 'hs');
    const torrc = join(dir, 'torrc');
    writeFileSync(
      torrc,
      `${testNetworkConfig(net)}DataDirectory ${join(dir, 'data')}\nSocksPort 0\nLog notice file ${join(dir, 'notice.log')}\n` +
        `HiddenServiceDir ${hsDir}\nHiddenServicePort ${ONION_PORT} 127.0.0.1:${server.tcp}\nHiddenServicePort ${CREDENTIALS_PORT} 127.0.0.1:${credentialsPort}\nHiddenServiceExportCircuitID haproxy\n`,
    );
    onionTor = group.spawn('onion service tor', tor, ['-f', torrc, '--defaults-torrc', '/dev/null']);
    hostname = await waitFor(
      'the onion service hostname',
      () => {
        if (onionTor.child.exitCode !== null) throw new Error(`tor exited ${onionTor.child.exitCode}: ${onionTor.output()}`);
        try {
          return readFileSync(join(hsDir, 'hostname'), 'utf8').trim() || undefined;
        } catch {
          return undefined;
        }
      },
      60_000,
      200,
    );
    // Reachable once its descriptor is published: the first attempts fail.
    await waitFor(
      `${hostname} to answer through Tor`,
      async () => {
        try {
          return (await mappedVia(net as TorNetwork, hostname, 'warmup')) !== '';
        } catch {
          return false;
        }
      },
      180_000,
      1000,
    );
  });

  after(async () => {
    await group.stopAll();
    await net?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('two clients on different circuits are told apart by the server while a call relays through the onion service', { timeout: 300_000 }, async () => {
    const tnet = net as TorNetwork;
    const peer = await startTurnutilsPeer(group);
    // The app's path: coturn's uclient -> onionturn client (per-flow isolation) -> Tor -> onion service -> server.
    const shim = spawnClient(group, [
      '--no-status',
      '--listen',
      '127.0.0.1:0',
      '--server',
      `tcp://${hostname}:${ONION_PORT}`,
      '--socks',
      `127.0.0.1:${tnet.socksPort}`,
    ]);
    const shimPort = Number(
      await waitFor(
        'the shim to listen',
        () => {
          if (shim.child.exitCode !== null) throw new Error(`onionturn client exited ${shim.child.exitCode}: ${shim.output()}`);
          return /"turn:127\.0\.0\.1:(\d+)\?transport=udp"/.exec(shim.output())?.[1];
        },
        30_000,
        100,
      ),
    );
    const call = runUclient(group, {
      server: { host: '127.0.0.1', port: shimPort },
      peer: { host: '127.0.0.1', port: peer.port },
      secret: SECRET,
      tcp: false,
      noRtcp: true,
      messages: 40,
      clients: 1,
      intervalMs: 100,
      timeoutMs: 120_000,
    });
    // Meanwhile two other clients, each on its own circuit.
    const [alice, bob] = await Promise.all([mappedVia(tnet, hostname, 'alice'), mappedVia(tnet, hostname, 'bob')]);
    const r = await call;
    assert.equal(r.sent, 40, `${r.output.slice(-1500)}\n--- shim:\n${shim.output().slice(-2000)}\n--- server:\n${server.process.output().slice(-2000)}`);
    assert.equal(r.received, 40, r.output.slice(-1500));
    // tor's encoding of a circuit id: fc00:dead:beef:4dad::/64, the id in the last 32 bits.
    for (const a of [alice, bob]) assert.match(a, /^fc00:dead:beef:4dad:/, `a circuit address, not 127.0.0.1: ${a}`);
    assert.notEqual(alice, bob, 'two circuits, two identities');
    // Asked again on alice's circuit (same SOCKS credentials, so the same circuit): the same identity.
    assert.equal(await mappedVia(tnet, hostname, 'alice'), alice);
  });

  test(
    "a per-client limit through the onion service counts per circuit: one circuit's credential burst spent, another is still served",
    { timeout: 300_000 },
    async () => {
      const tnet = net as TorNetwork;
      // The endpoint's rate limit per client: 60 at once, then one a second (server-exposure test).
      const carol: number[] = [];
      while (carol.length < 80 && carol.at(-1) !== 429) carol.push(await credentialStatus(tnet, hostname, 'carol'));
      assert.equal(carol.at(-1), 429, `carol's circuit is limited after its burst: ${carol.join(' ')}`);
      assert.ok(carol.length >= 61, `carol's circuit got its 60 at once: ${carol.join(' ')}`);
      assert.deepEqual([...new Set(carol.slice(0, -1))], [200]);
      // All of them came from 127.0.0.1 (tor), yet dave, on another circuit, is served.
      assert.equal(await credentialStatus(tnet, hostname, 'dave'), 200, 'another circuit is not limited by carol');
    },
  );
});
