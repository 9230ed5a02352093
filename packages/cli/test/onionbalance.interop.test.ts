// Onionbalance (issue 17, deliverable 3): two real `onionturn server` backends, each behind its
// own tor as `HiddenServiceOnionbalanceInstance 1`, and Debian's onionbalance publishing the
// frontend descriptor through a third tor, all on the private Tor network. A client tor reaches
// the servers at the frontend address only (SOCKS + TURN Allocate over TCP with a REST credential
// from the one shared secret); then backend B's tor stops and new allocations must still succeed.
// The network runs with V3AuthVotingInterval 20 and 5 relays: onionbalance 0.2.2 hardcodes
// chutney's 20 s interval in its --is-testnet time-period maths and loops forever with fewer
// than 5 HSDirs (see docs/onionbalance.md).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { formatRestUsername, longTermKey, restPassword } from '@onionturn/credentials';
import {
  AttributeType,
  HEADER_LENGTH,
  MessageBuilder,
  MessageClass,
  Method,
  decodeMessage,
  readAttribute,
  readText,
  type StunMessage,
} from '@onionturn/protocol';
import {
  ProcessGroup,
  TOOLS,
  TorControl,
  buildTorrc,
  canConnect,
  freePort,
  generateOnionIdentity,
  onionbalanceObConfig,
  portRange,
  requireTool,
  sleep,
  socks5Connect,
  startServer,
  startTorNetwork,
  waitFor,
  type RunningServer,
  type Started,
  type TorNetwork,
} from '@onionturn/testkit';

const SECRET = 'onionbalance-shared-secret';
/** Backend B listens here (A on 127.0.0.1): both onion services map the same virtual port. */
const HOST_B = '127.0.0.2';
/** Onionbalance's --is-testnet maths assume this voting interval (chutney's). */
const VOTING_INTERVAL = 20;
const ATTEMPT_TIMEOUT_MS = 45_000;
/** onionbalance 0.2.2 hangs computing responsible HSDirs with fewer than 5 (hashring.py). */
const MIN_HSDIRS = 5;
/**
 * How long fresh clients keep trying (and we watch for onionbalance dropping the stopped backend).
 * It did not within 240 s: the HSDirs keep serving the stopped tor's last descriptor (see
 * docs/onionbalance.md); 60 s keeps the test short.
 */
const REPUBLISH_LIMIT_MS = 60_000;

interface Allocated {
  /** XOR-RELAYED-ADDRESS host: which backend made the allocation. */
  readonly relayHost: string;
  readonly ms: number;
}

function within<T>(p: Promise<T>, what: string, ms: number): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`no ${what} within ${ms} ms`)))]);
}

async function readStun(sock: Socket): Promise<StunMessage> {
  let buf = Buffer.alloc(0);
  for (;;) {
    if (buf.length >= HEADER_LENGTH && buf.length >= HEADER_LENGTH + buf.readUInt16BE(2)) {
      const r = decodeMessage(buf.subarray(0, HEADER_LENGTH + buf.readUInt16BE(2)));
      if (!r.ok) throw new Error(r.error.reason);
      return r.value;
    }
    const [chunk] = (await once(sock, 'data')) as [Buffer];
    buf = Buffer.concat([buf, chunk]);
  }
}

/** A fresh circuit (own SOCKS auth) to HOST:PORT, then the long-term Allocate handshake over TCP. */
async function allocateThroughTor(net: TorNetwork, host: string, port: number): Promise<Allocated> {
  const t0 = Date.now();
  const sock = await socks5Connect({
    proxyPort: net.socksPort,
    host,
    port,
    timeoutMs: ATTEMPT_TIMEOUT_MS,
    username: `ob-${Date.now()}-${Math.random()}`,
    password: 'x',
  });
  try {
    const ask = async (msg: Buffer): Promise<StunMessage> => {
      const reply = readStun(sock);
      sock.write(msg);
      return within(reply, 'TURN answer', 20_000);
    };
    const transport = { kind: 'requested-transport', protocol: 17 } as const;
    const first = await ask(new MessageBuilder(Method.Allocate, MessageClass.Request).add(AttributeType.RequestedTransport, transport).build());
    const realm = readText(first, AttributeType.Realm) ?? '';
    const nonce = readText(first, AttributeType.Nonce) ?? '';
    const username = formatRestUsername(Math.floor(Date.now() / 1000) + 600, 'ob');
    const password = restPassword(SECRET, username);
    const second = await ask(
      new MessageBuilder(Method.Allocate, MessageClass.Request)
        .add(AttributeType.RequestedTransport, transport)
        .add(AttributeType.Username, { kind: 'text', text: username })
        .add(AttributeType.Realm, { kind: 'text', text: realm })
        .add(AttributeType.Nonce, { kind: 'text', text: nonce })
        .build({ integrityKey: longTermKey(username, realm, password) }),
    );
    const relayed = readAttribute(second, AttributeType.XorRelayedAddress);
    if (!relayed?.ok || relayed.value.kind !== 'address') {
      const err = readAttribute(second, AttributeType.ErrorCode);
      throw new Error(`Allocate failed: ${err?.ok && err.value.kind === 'error-code' ? err.value.code : 'no XOR-RELAYED-ADDRESS'}`);
    }
    return { relayHost: relayed.value.address.address, ms: Date.now() - t0 };
  } finally {
    sock.destroy();
  }
}

/** NEWNYM on the client tor: forgets cached onion descriptors and which HSDirs it already asked. */
async function newnym(net: TorNetwork): Promise<void> {
  const control = await net.control();
  try {
    await control.command('SIGNAL NEWNYM');
  } finally {
    control.close();
  }
}

describe('Onionbalance: two onionturn servers behind one onion address', { timeout: 600_000 }, () => {
  const group = new ProcessGroup();
  const frontend = generateOnionIdentity();
  let dir: string;
  let net: TorNetwork | undefined;
  let serverA: RunningServer;
  let serverB: RunningServer;
  let backendB: Started;
  let backendBDir: string;
  let onionbalance: Started;
  let obLog: string;
  let port: number;
  const t0 = Date.now();
  const at = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  const diagnostics = (): string =>
    `\n--- onionbalance (tail) ---\n${onionbalance ? onionbalance.output().slice(-4000) : '(not started)'}` +
    `\n--- backend B tor ---\n${backendBDir && existsSync(join(backendBDir, 'notice.log')) ? readFileSync(join(backendBDir, 'notice.log'), 'utf8').slice(-1500) : ''}` +
    `\n--- network ---\n${net?.logTail(8) ?? ''}`;

  before(async () => {
    const onionbalanceBin = requireTool(TOOLS.onionbalance);
    dir = mkdtempSync(join(tmpdir(), 'onionturn-ob-'));
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
    // Both servers share the REST secret, so one credential works on either.
    serverA = await startServer(group, ['--secret-file', join(dir, 'secret')], {}, { listen: ['tcp://127.0.0.1:0'] });
    port = serverA.tcp;
    serverB = await startServer(group, ['--secret-file', join(dir, 'secret')], {}, { listen: [`tcp://${HOST_B}:${port}`], relayPorts: portRange(2000) });
    assert.equal(serverB.tcp, port, 'backend B listens on the same port as A');

    // Backend A is the network's own onion service; 3 extra relays give 6 HSDirs (onionbalance needs 5).
    net = await startTorNetwork({
      onion: { targetPort: port, onionbalanceFrontend: frontend.hostname },
      extraRelays: 3,
      votingInterval: VOTING_INTERVAL,
      timeoutMs: 180_000,
      progress: (m) => console.log(`[${at()}] tor: ${m}`),
    });
    const hostnameA = readFileSync(join(net.dataDir, 'onion', 'hs', 'hostname'), 'utf8').trim();

    // Backend B: its own tor in the same network, mapping the same virtual port to HOST_B.
    const torPath = requireTool(TOOLS.tor);
    backendBDir = join(dir, 'backend-b');
    mkdirSync(join(backendBDir, 'hs'), { recursive: true, mode: 0o700 });
    writeFileSync(join(backendBDir, 'hs', 'ob_config'), onionbalanceObConfig(frontend.hostname));
    const torrcB = buildTorrc({
      role: 'onion',
      nickname: 'backendb',
      dataDir: backendBDir,
      controlPort: await freePort(),
      authorities: net.authorities,
      hiddenServiceDir: join(backendBDir, 'hs'),
      hiddenServicePorts: [port],
      hiddenServiceTargetHost: HOST_B,
      onionbalanceInstance: true,
      owningPid: process.pid,
    });
    writeFileSync(join(backendBDir, 'torrc'), torrcB);
    backendB = group.spawn('backend B tor', torPath, ['-f', join(backendBDir, 'torrc'), '--defaults-torrc', '/dev/null']);
    const hostnameB = await waitFor(
      'backend B hostname',
      () => existsSync(join(backendBDir, 'hs', 'hostname')) && readFileSync(join(backendBDir, 'hs', 'hostname'), 'utf8').trim(),
      30_000,
    );

    // The frontend tor: a client whose control port onionbalance drives (HSFETCH, HSPOST).
    const frontDir = join(dir, 'frontend');
    mkdirSync(frontDir, { mode: 0o700 });
    const frontControl = await freePort();
    writeFileSync(
      join(frontDir, 'torrc'),
      buildTorrc({
        role: 'client',
        nickname: 'frontend',
        dataDir: frontDir,
        controlPort: frontControl,
        socksPort: await freePort(),
        authorities: net.authorities,
        owningPid: process.pid,
      }),
    );
    const frontTor = group.spawn('frontend tor', torPath, ['-f', join(frontDir, 'torrc'), '--defaults-torrc', '/dev/null']);

    writeFileSync(join(dir, 'frontend.key'), frontend.privateKeyPem, { mode: 0o600 });
    writeFileSync(
      join(dir, 'config.yaml'),
      ['services:', '- key: frontend.key', '  instances:', `  - address: ${hostnameA}`, `  - address: ${hostnameB}`, ''].join('\n'),
    );
    obLog = join(dir, 'onionbalance.log');
    // onionbalance 0.2.2 exits at start ("Could not open cached consensus") when its tor has none yet.
    await waitFor('frontend tor control port', () => canConnect('127.0.0.1', frontControl), 30_000, 200);
    /** One control-port question to the frontend tor; undefined while it cannot answer yet. */
    const askFrontend = async <T>(ask: (control: TorControl) => Promise<T | undefined>): Promise<T | undefined> => {
      if (frontTor.child.exitCode !== null) throw new Error(`frontend tor exited: ${frontTor.output()}`);
      try {
        const control = await TorControl.connect(frontControl);
        try {
          return await ask(control);
        } finally {
          control.close();
        }
      } catch {
        return undefined;
      }
    };
    await waitFor(
      'frontend tor Bootstrapped 100%',
      () => askFrontend(async (control) => ((await control.bootstrapProgress()) === 100 ? true : undefined)),
      60_000,
      250,
    );
    // onionbalance's hash ring holds the relays of the md consensus with the HSDir flag and a
    // microdescriptor: with 4 or fewer, its responsible-HSDir loop spins forever (hashring.py).
    const hsdirs = await waitFor(
      `${MIN_HSDIRS} HSDirs in the frontend tor's consensus`,
      () =>
        askFrontend(async (control) => {
          const md = await control.getInfo('dir/status-vote/current/consensus-microdesc');
          const n = md.split('\n').filter((l) => /^s .*\bHSDir\b/.test(l)).length;
          return n >= MIN_HSDIRS ? n : undefined;
        }),
      90_000,
      1000,
    );
    console.log(`[${at()}] frontend tor bootstrapped; its consensus lists ${hsdirs} HSDirs`);
    onionbalance = group.spawn('onionbalance', onionbalanceBin, ['--is-testnet', '-v', 'info', '-p', String(frontControl), '-c', join(dir, 'config.yaml')]);
    // Its log, on disk while the test runs (ONIONTURN_KEEP_OB_LOGS=1 keeps the directory).
    const dump = setInterval(() => writeFileSync(obLog, onionbalance.output()), 2000);
    dump.unref();
    onionbalance.child.once('exit', () => clearInterval(dump));
    console.log(`[${at()}] backends A ${hostnameA}, B ${hostnameB}; frontend ${frontend.hostname}; onionbalance pid ${onionbalance.pid}`);
  });

  after(async () => {
    if (obLog && onionbalance) writeFileSync(obLog, onionbalance.output());
    await group.stopAll();
    await net?.stop();
    if (process.env['ONIONTURN_KEEP_OB_LOGS'] === undefined) rmSync(dir, { recursive: true, force: true });
    else console.log(`logs kept in ${dir}`);
  });

  test('onionbalance loads the frontend key we made (same address)', async () => {
    await waitFor('onionbalance to load its key', () => onionbalance.output().includes('Loaded onion'), 30_000, 200);
    const loaded = /Loaded onion (\S+) from/.exec(onionbalance.output())?.[1];
    assert.equal(`${loaded?.replace(/\.onion$/, '')}.onion`, frontend.hostname, diagnostics());
  });

  test('allocations through the frontend address reach both backends; with backend B stopped new ones still succeed', async () => {
    // 1. The frontend becomes reachable once onionbalance has fetched a backend descriptor and uploaded its own.
    const tReach = Date.now();
    let first: Allocated | undefined;
    let lastError = '';
    while (!first && Date.now() - tReach < 300_000) {
      if (onionbalance.child.exitCode !== null) assert.fail(`onionbalance exited ${onionbalance.child.exitCode}${diagnostics()}`);
      try {
        first = await allocateThroughTor(net!, frontend.hostname, port);
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        // A failed fetch makes the client skip those HSDirs for a while; NEWNYM forgets that.
        await newnym(net!);
        await sleep(2000);
      }
    }
    assert.ok(first, `frontend never reachable within 300 s (last error: ${lastError})${diagnostics()}`);
    console.log(`[${at()}] first allocation through the frontend after ${Date.now() - tReach} ms of trying (backend ${first.relayHost})`);

    // 2. New circuits pick intro points at random: both backends serve (once onionbalance lists both).
    const seen = new Set([first.relayHost]);
    const tBoth = Date.now();
    const times: number[] = [];
    while (seen.size < 2 && Date.now() - tBoth < 240_000) {
      try {
        const a = await allocateThroughTor(net!, frontend.hostname, port);
        seen.add(a.relayHost);
        times.push(a.ms);
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
      }
    }
    assert.deepEqual([...seen].sort(), ['127.0.0.1', HOST_B], `only ${[...seen].join()} served within 240 s (last error: ${lastError})${diagnostics()}`);
    console.log(`[${at()}] both backends served after ${Date.now() - tBoth} ms more; allocation times ${times.join(', ')} ms`);

    // 3. Stop backend B's tor. Its last descriptor stays on the HSDirs until it expires, so
    // onionbalance keeps B's intro points until then; a client that picks one fails over to
    // another intro point. Measured: same client (it remembers failed intro points), fresh
    // clients (NEWNYM forgets everything), and when onionbalance publishes without B.
    const obBefore = onionbalance.output().length;
    process.kill(backendB.pid, 'SIGTERM');
    await waitFor('backend B tor to exit', () => backendB.child.exitCode !== null || backendB.child.signalCode !== null, 10_000);
    const tStop = Date.now();
    console.log(`[${at()}] backend B tor stopped`);
    const results: string[] = [];
    let failures = 0;
    const attempt = async (label: string): Promise<void> => {
      try {
        const a = await allocateThroughTor(net!, frontend.hostname, port);
        results.push(`${label}@${Math.round((Date.now() - tStop) / 1000)}s:${a.relayHost === HOST_B ? 'B' : 'A'}:${a.ms}ms`);
        assert.equal(a.relayHost, '127.0.0.1', 'a stopped backend cannot allocate');
      } catch (err) {
        failures++;
        results.push(`${label}@${Math.round((Date.now() - tStop) / 1000)}s:FAILED(${err instanceof Error ? err.message : String(err)})`);
      }
    };
    for (let i = 0; i < 4; i++) await attempt('same');
    // Fresh clients until onionbalance has published a descriptor without B (capped).
    const withoutB = (): boolean => /We got \d+ intros from 1 instances/.test(onionbalance.output().slice(obBefore));
    let republishedAt: number | undefined;
    while (Date.now() - tStop < REPUBLISH_LIMIT_MS) {
      if (republishedAt === undefined && withoutB()) republishedAt = Date.now();
      await newnym(net!);
      await attempt(republishedAt === undefined ? 'fresh' : 'fresh-after-republish');
      if (republishedAt !== undefined && Date.now() - republishedAt > 5_000) break;
      await sleep(5_000);
    }
    console.log(`[${at()}] after stopping B: ${results.join('  ')}`);
    console.log(
      `[${at()}] onionbalance published a descriptor without B: ${republishedAt === undefined ? `not within ${REPUBLISH_LIMIT_MS / 1000} s` : `${Math.round((republishedAt - tStop) / 1000)} s after B stopped`}`,
    );
    assert.equal(failures, 0, `${failures} allocations failed after backend B stopped: ${results.join('  ')}${diagnostics()}`);
  });
});
