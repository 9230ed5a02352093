// UDP for any app through the real `onionturn client` on the private Tor network: PySocks (Debian
// python3-socks) with a SOCK_DGRAM socket through --socks-listen to a UDP echo server by IP and by
// a host name resolved by Tor's exits (testkit's DNS responder answers 127.0.0.1), dig (Debian
// bind9-dnsutils) through a --forward to a real dnsmasq, all over the exit path to the real
// `onionturn server` (--allow-loopback-peers: the targets are on loopback), and the same by .onion
// name to `onionturn udp-gateway` behind the network's onion service. Bad input on the front
// end is refused or dropped and counted, and another association keeps working.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  ProcessGroup,
  requireTool,
  type RunningServer,
  type Started,
  startServer,
  startTorNetwork,
  TOOLS,
  type TorNetwork,
  waitFor,
  shimArgs,
} from '@onionturn/testkit';
import { BIN, REPO_ROOT, cleanEnv, spawnClient } from './run-cli.js';

const SECRET = 'socks-udp-interop-secret';
const PYSOCKS_SCRIPT = join(REPO_ROOT, 'packages/cli/test/fixtures/pysocks-udp.py');

interface PySocksResult {
  readonly sent: number;
  readonly received: number;
  readonly echoes: (string | null)[];
  readonly sources: string[];
}

function runPySocks(python: string, args: readonly (string | number)[]): Promise<PySocksResult> {
  return new Promise((resolve, reject) => {
    execFile(python, [PYSOCKS_SCRIPT, ...args.map(String)], { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`pysocks-udp.py failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1) as string) as PySocksResult);
    });
  });
}

function runDig(dig: string, port: number, name: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(dig, ['@127.0.0.1', '-p', String(port), name, '+short', '+timeout=30', '+tries=1'], { timeout: 60_000 }, (_err, stdout, stderr) =>
      resolve(`${stdout}${stderr}`.trim()),
    );
  });
}

/** A minimal SOCKS5 app written here: raw bytes, to send what no library would. */
async function control(port: number): Promise<{ sock: Socket; read: (n: number) => Promise<Buffer>; closed: Promise<void> }> {
  const sock = connect({ host: '127.0.0.1', port });
  await once(sock, 'connect');
  let buf = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  sock.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    wake?.();
  });
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  sock.on('error', () => {});
  const read = async (n: number): Promise<Buffer> => {
    const deadline = Date.now() + 10_000;
    while (buf.length < n) {
      if (Date.now() > deadline) throw new Error(`wanted ${n} bytes from the front end, have ${buf.length}`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };
  return { sock, read, closed };
}

async function udpSocket(): Promise<UdpSocket> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

describe('onionturn client --socks-listen and --forward over the private Tor network', () => {
  const group = new ProcessGroup();
  let net: TorNetwork | undefined;
  let server: RunningServer;
  let echo: UdpSocket;
  let echoPort: number;
  let dnsmasqPort: number;
  let client: Started;
  let stderr = '';
  let socksFront: number;
  let forwardPort: number;
  let onionForwardPort: number;
  let onion: string;
  let gatewayEchoPort: number;
  let gatewayDnsPort: number;
  let dir: string;
  let python: string;
  let dig: string;

  before(async () => {
    python = requireTool(TOOLS.pysocks);
    dig = requireTool(TOOLS.dig);
    const dnsmasq = requireTool(TOOLS.dnsmasq);
    dir = mkdtempSync(join(tmpdir(), 'onionturn-socks-udp-'));
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
    echo = createSocket('udp4');
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    echo.bind(0, '127.0.0.1');
    await once(echo, 'listening');
    echoPort = echo.address().port;
    dnsmasqPort = await freePort();
    const dns = group.spawn('dnsmasq', dnsmasq, [
      '--no-daemon',
      `--port=${dnsmasqPort}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      '--address=/example.test/10.9.8.7',
      '--pid-file=',
      '--log-queries',
    ]);
    // The datagram onion services (issue 15 B): `onionturn udp-gateway` in front of the echo server and dnsmasq.
    gatewayEchoPort = await freePort();
    gatewayDnsPort = await freePort();
    for (const [name, listen, to] of [
      ['udp-gateway (echo)', gatewayEchoPort, echoPort],
      ['udp-gateway (dns)', gatewayDnsPort, dnsmasqPort],
    ] as const) {
      const g = group.spawn(name, process.execPath, [BIN, 'udp-gateway', '--listen', `tcp://127.0.0.1:${listen}`, '--to', `udp://127.0.0.1:${to}`], {
        env: cleanEnv(),
      });
      await waitFor(
        `${name} listening`,
        () => {
          if (g.child.exitCode !== null) throw new Error(`${name} exited: ${g.output()}`);
          return g.output().includes('udp-gateway listening');
        },
        10_000,
        50,
      );
    }
    net = await startTorNetwork({ onion: { targetPort: gatewayEchoPort, extraPorts: [gatewayDnsPort] }, timeoutMs: 120_000 });
    onion = net.onion?.hostname ?? assert.fail('no onion service');
    server = await startServer(group, ['--secret-file', join(dir, 'secret'), '--allow-loopback-peers']);
    await waitFor('dnsmasq started', () => dns.output().includes('started'), 10_000, 50);
    socksFront = await freePort();
    forwardPort = await freePort();
    onionForwardPort = await freePort();
    client = spawnClient(
      group,
      [
        ...shimArgs({ serverPort: server.tcp, socks: `${net.socksHost}:${net.socksPort}` }),
        '--upstream-secret-file',
        join(dir, 'secret'),
        '--socks-listen',
        `127.0.0.1:${socksFront}`,
        '--forward',
        `udp://127.0.0.1:${forwardPort}=127.0.0.1:${dnsmasqPort}`,
        '--forward',
        `udp://127.0.0.1:${onionForwardPort}=${onion}:${gatewayDnsPort}`,
      ],
      { ONIONTURN_LOCAL_PASSWORD: 'unused-here', XDG_CONFIG_HOME: join(dir, 'xdg') },
    );
    client.child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    await waitFor(
      'the shim listening',
      () => {
        if (client.child.exitCode !== null) throw new Error(`client exited: ${client.output()}`);
        return stderr.includes('"message":"listening"');
      },
      20_000,
      50,
    );
  });

  after(async () => {
    echo?.close();
    await group.stopAll();
    await net?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('PySocks SOCK_DGRAM to a UDP echo server by IP: every datagram comes back, from the echo server', async () => {
    const r = await runPySocks(python, [socksFront, '127.0.0.1', echoPort, 5]);
    assert.equal(r.received, 5, `${JSON.stringify(r)}\n--- shim:\n${stderr.slice(-3000)}`);
    assert.deepEqual(
      r.echoes,
      [0, 1, 2, 3, 4].map((i) => `datagram-${i}`),
    );
    assert.deepEqual(r.sources, [`127.0.0.1:${echoPort}`]);
  });

  test('a host name destination is resolved by Tor at the exit, never here (and with SOCKS username/password isolation)', async () => {
    const r = await runPySocks(python, [socksFront, 'udp-echo.onionturn.test', echoPort, 3, 'alice', 'wonderland']);
    assert.equal(r.received, 3, `${JSON.stringify(r)}\n--- shim:\n${stderr.slice(-3000)}`);
    assert.deepEqual(r.sources, [`127.0.0.1:${echoPort}`], 'the exit resolved the name to 127.0.0.1 (the test DNS responder)');
  });

  test('dig through a --forward to a real dnsmasq over the exit path: the answer comes back', async () => {
    const out = await runDig(dig, forwardPort, 'example.test');
    assert.equal(out, '10.9.8.7', `${out}\n--- shim:\n${stderr.slice(-3000)}`);
    // A second query is a new source port: a new flow, answered too.
    assert.equal(await runDig(dig, forwardPort, 'www.example.test'), '10.9.8.7');
  });

  test('PySocks to NAME.onion:PORT: datagrams go to the datagram onion service and come back from it', async () => {
    const r = await runPySocks(python, [socksFront, onion, gatewayEchoPort, 4]);
    assert.equal(r.received, 4, `${JSON.stringify(r)}\n--- shim:\n${stderr.slice(-3000)}`);
    assert.deepEqual(
      r.echoes,
      [0, 1, 2, 3].map((i) => `datagram-${i}`),
    );
    // The app is told the reply came from the onion name (a DOMAINNAME header).
    assert.deepEqual(r.sources, [`${onion}:${gatewayEchoPort}`]);
  });

  test('dig through a --forward to dnsmasq behind a datagram onion service', async () => {
    const out = await runDig(dig, onionForwardPort, 'example.test');
    assert.equal(out, '10.9.8.7', `${out}\n--- shim:\n${stderr.slice(-3000)}`);
  });

  test('bad input: no acceptable method (0xFF), CONNECT (0x07), a bad address type (0x08): clear replies', async () => {
    const a = await control(socksFront);
    a.sock.write(Buffer.from([5, 1, 0x80]));
    assert.deepEqual(await a.read(2), Buffer.from([5, 0xff]));
    await a.closed;
    const b = await control(socksFront);
    b.sock.write(Buffer.from([5, 1, 0]));
    assert.deepEqual(await b.read(2), Buffer.from([5, 0]));
    b.sock.write(Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, 0, 80]));
    assert.equal((await b.read(10))[1], 0x07);
    await b.closed;
    const c = await control(socksFront);
    c.sock.write(Buffer.from([5, 1, 0]));
    await c.read(2);
    c.sock.write(Buffer.from([5, 3, 0, 9, 0, 0]));
    assert.equal((await c.read(10))[1], 0x08);
    await c.closed;
  });

  test('bad datagrams (bad address type, FRAG != 0, oversized, a foreign source) are dropped and counted; the association and another one keep working', async () => {
    const app = await udpSocket();
    const foreign = await udpSocket();
    const ctl = await control(socksFront);
    ctl.sock.write(Buffer.from([5, 1, 0]));
    await ctl.read(2);
    const port = app.address().port;
    // DST.ADDR/PORT name the app's socket: only it may send.
    ctl.sock.write(Buffer.from([5, 3, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff]));
    const reply = await ctl.read(10);
    assert.equal(reply[1], 0);
    assert.deepEqual([...reply.subarray(4, 8)], [127, 0, 0, 1], 'the relay is on the loopback');
    const relayPort = reply.readUInt16BE(8);
    const header = (frag: number, atyp = 1): Buffer => Buffer.from([0, 0, frag, atyp, 127, 0, 0, 1, echoPort >> 8, echoPort & 0xff]);
    const got: Buffer[] = [];
    app.on('message', (m) => got.push(m));
    app.send(Buffer.concat([header(0, 7), Buffer.from('bad-atyp')]), relayPort, '127.0.0.1');
    app.send(Buffer.concat([header(1), Buffer.from('fragment')]), relayPort, '127.0.0.1');
    app.send(Buffer.concat([header(0), Buffer.alloc(20_000, 0x61)]), relayPort, '127.0.0.1');
    foreign.send(Buffer.concat([header(0), Buffer.from('foreign')]), relayPort, '127.0.0.1');
    app.send(Buffer.concat([header(0), Buffer.from('good')]), relayPort, '127.0.0.1');
    await waitFor('the good datagram echoed', () => got.length > 0, 60_000, 50);
    // Only the good one: the app's header names the echo server, then the payload.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(got.length, 1, got.map((g) => g.subarray(10).toString()).join(','));
    assert.deepEqual(got[0]?.subarray(0, 10), Buffer.from([0, 0, 0, 1, 127, 0, 0, 1, echoPort >> 8, echoPort & 0xff]));
    assert.equal(got[0]?.subarray(10).toString(), 'good');
    // Another association works meanwhile.
    const other = await runPySocks(python, [socksFront, '127.0.0.1', echoPort, 2]);
    assert.equal(other.received, 2);
    ctl.sock.destroy();
    app.close();
    foreign.close();
  });

  test('a wrong upstream secret: the association closes and the shim says why in one warning', async () => {
    writeFileSync(join(dir, 'wrong-secret'), 'not-the-server-secret\n', { mode: 0o600 });
    const port = await freePort();
    const wrong = spawnClient(
      group,
      [
        ...shimArgs({ serverPort: server.tcp, socks: (net as TorNetwork).socksPort }),
        '--upstream-secret-file',
        join(dir, 'wrong-secret'),
        '--socks-listen',
        `127.0.0.1:${port}`,
      ],
      { ONIONTURN_LOCAL_PASSWORD: 'unused-here', XDG_CONFIG_HOME: join(dir, 'xdg', 'onionturn client (wrong secret)') },
    );
    await waitFor('the second shim listening', () => wrong.output().includes('"message":"listening"'), 20_000, 50);
    const app = await udpSocket();
    const ctl = await control(port);
    ctl.sock.write(Buffer.from([5, 1, 0]));
    await ctl.read(2);
    ctl.sock.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]));
    const relayPort = (await ctl.read(10)).readUInt16BE(8);
    app.send(Buffer.concat([Buffer.from([0, 0, 0, 1, 127, 0, 0, 1, echoPort >> 8, echoPort & 0xff]), Buffer.from('x')]), relayPort, '127.0.0.1');
    // The app learns by its control connection closing; the user by the log.
    await ctl.closed;
    await waitFor(
      'the warning',
      () =>
        /"level":"warn","message":"datagram flow closed: the TURN server refused the shim's upstream credential \(401[^"]*\): check --upstream-secret-file/.test(
          wrong.output(),
        ),
      10_000,
      50,
    );
    app.close();
  });

  test('stop: exit 0, counters by kind in the last line, no destination names or addresses in the log', async () => {
    client.child.kill('SIGTERM');
    await waitFor('client exit', () => client.child.exitCode !== null, 10_000, 50);
    assert.equal(client.child.exitCode, 0, stderr.slice(-2000));
    const stopped =
      stderr
        .split('\n')
        .filter((l) => l.includes('"message":"stopped"'))
        .at(-1) ?? '';
    const stats = (JSON.parse(stopped) as { stats: Record<string, unknown> }).stats as {
      datagramFlows: Record<string, { opened: number; routes: Record<string, number>; dropped: Record<string, number> }>;
      torResolves: number;
      socksRefused: number;
    };
    const s = stats.datagramFlows['socks-udp'];
    const f = stats.datagramFlows['udp-forward'];
    assert.ok(s && f, stopped);
    assert.ok(s.opened >= 4, stopped);
    assert.ok(f.opened >= 2, stopped);
    assert.ok((s.routes['hostname'] ?? 0) >= 3, stopped);
    assert.ok((s.routes['onion'] ?? 0) >= 4, stopped);
    assert.ok((f.routes['onion'] ?? 0) >= 1, stopped);
    assert.ok(stats.torResolves >= 1, stopped);
    assert.ok(stats.socksRefused >= 3, stopped);
    for (const reason of ['bad-header', 'fragmented', 'oversized', 'foreign-source']) assert.ok((s.dropped[reason] ?? 0) >= 1, `${reason}: ${stopped}`);
    // SafeLogging: the host name, the forward's target and the app's ports stay out of the log.
    assert.doesNotMatch(stderr, /udp-echo\.onionturn\.test|alice/);
    assert.doesNotMatch(stderr, new RegExp(onion.slice(0, 20)));
    assert.doesNotMatch(stderr, new RegExp(`:${dnsmasqPort}\\b`));
  });
});
