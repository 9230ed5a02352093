// Two real `onionturn server` backends behind one Onionbalance frontend on the private Tor network
// (docs/onionbalance.md): each backend behind its own tor as `HiddenServiceOnionbalanceInstance 1`,
// Debian's onionbalance publishing the frontend descriptor through a third tor, and TURN Allocates
// through the network's client tor to the frontend address. Shared by
// onionbalance.interop.test.ts and scripts/onionbalance-failover.mjs (the failover measurement).
// The network runs with V3AuthVotingInterval 20 and 6 relays: onionbalance 0.2.2 hardcodes
// chutney's 20 s interval in its --is-testnet time-period maths and loops forever with fewer
// than 5 HSDirs (see docs/onionbalance.md).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatRestUsername, restPassword } from '@onionturn/credentials';
import {
  ProcessGroup,
  allocateOnStream,
  TOOLS,
  TorControl,
  buildTorrc,
  canConnect,
  freePort,
  generateOnionIdentity,
  onionbalanceObConfig,
  portRange,
  repoRoot,
  requireTool,
  sleep,
  socks5Connect,
  startServer,
  startTorNetwork,
  waitFor,
  type OnionIdentity,
  type Started,
  type TorNetwork,
} from '@onionturn/testkit';

const SECRET = 'onionbalance-shared-secret';
/** Backend A's address (the network's own onion service maps the port to it). */
export const HOST_A = '127.0.0.1';
/** Backend B listens here: both onion services map the same virtual port. */
export const HOST_B = '127.0.0.2';
/** Onionbalance's --is-testnet maths assume this voting interval (chutney's). */
const VOTING_INTERVAL = 20;
/** One SOCKS CONNECT through tor (descriptor fetch, introduction, rendezvous). */
export const ATTEMPT_TIMEOUT_MS = 45_000;
/** tor's least interval between two NEWNYMs it applies at once (MAX_SIGNAL_NEWNYM_INTERVAL), plus a margin. */
const NEWNYM_INTERVAL_MS = 10_500;
/** onionbalance 0.2.2 hangs computing responsible HSDirs with fewer than 5 (hashring.py). */
const MIN_HSDIRS = 5;

export interface Allocated {
  /** XOR-RELAYED-ADDRESS host: which backend made the allocation. */
  readonly relayHost: string;
  readonly ms: number;
}

export interface OnionbalancePairOptions {
  /**
   * Seconds onionbalance pauses after its first fetch and its first publish check (its own
   * default 45): set through docker/onionbalance/run-onionbalance.py.
   */
  readonly initialDelaySeconds: number;
  readonly log: (line: string) => void;
}

/** The interpreter of /usr/sbin/onionbalance (its #! line): the one with Debian's onionbalance module. */
function onionbalancePython(script: string): string {
  const m = /^#!\s*(\S+)/.exec(readFileSync(script, 'utf8'));
  if (!m?.[1]) throw new Error(`${script} has no #! line naming its python`);
  return m[1];
}

/** The private network, both backends, the frontend tor and onionbalance; stop() ends them all. */
export class OnionbalancePair {
  readonly frontend: OnionIdentity = generateOnionIdentity();
  readonly group = new ProcessGroup();
  readonly dir = mkdtempSync(join(tmpdir(), 'onionturn-ob-'));
  #net: TorNetwork | undefined;
  #backendB: Started | undefined;
  #backendBDir: string | undefined;
  #onionbalance: Started | undefined;
  #obLog: string | undefined;
  #port = 0;
  /** When the last NEWNYM was sent (tor delays one that comes sooner than 10 s after it). */
  #lastNewnym = 0;

  get net(): TorNetwork {
    if (!this.#net) throw new Error('the pair has not started');
    return this.#net;
  }

  get onionbalance(): Started {
    if (!this.#onionbalance) throw new Error('onionbalance has not started');
    return this.#onionbalance;
  }

  /** The virtual port of the frontend (and both backends). */
  get port(): number {
    return this.#port;
  }

  async start(options: OnionbalancePairOptions): Promise<void> {
    const { log, initialDelaySeconds } = options;
    const group = this.group;
    const dir = this.dir;
    const onionbalanceBin = requireTool(TOOLS.onionbalance);
    const root = repoRoot() ?? process.cwd();
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
    // Both servers share the REST secret, so one credential works on either.
    const serverA = await startServer(group, ['--secret-file', join(dir, 'secret')], {}, { listen: [`tcp://${HOST_A}:0`] });
    const port = serverA.tcp;
    this.#port = port;
    const serverB = await startServer(group, ['--secret-file', join(dir, 'secret')], {}, { listen: [`tcp://${HOST_B}:${port}`], relayPorts: portRange(2000) });
    if (serverB.tcp !== port) throw new Error(`backend B listens on ${serverB.tcp}, not A's ${port}`);

    // Backend A is the network's own onion service; 3 extra relays give 6 HSDirs (onionbalance needs 5).
    const net = await startTorNetwork({
      onion: { targetPort: port, onionbalanceFrontend: this.frontend.hostname },
      extraRelays: 3,
      votingInterval: VOTING_INTERVAL,
      timeoutMs: 180_000,
      progress: (m) => log(`tor: ${m}`),
    });
    this.#net = net;
    const hostnameA = readFileSync(join(net.dataDir, 'onion', 'hs', 'hostname'), 'utf8').trim();

    // Backend B: its own tor in the same network, mapping the same virtual port to HOST_B.
    const torPath = requireTool(TOOLS.tor);
    const backendBDir = join(dir, 'backend-b');
    this.#backendBDir = backendBDir;
    mkdirSync(join(backendBDir, 'hs'), { recursive: true, mode: 0o700 });
    writeFileSync(join(backendBDir, 'hs', 'ob_config'), onionbalanceObConfig(this.frontend.hostname));
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
    this.#backendB = group.spawn('backend B tor', torPath, ['-f', join(backendBDir, 'torrc'), '--defaults-torrc', '/dev/null']);
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

    writeFileSync(join(dir, 'frontend.key'), this.frontend.privateKeyPem, { mode: 0o600 });
    writeFileSync(
      join(dir, 'config.yaml'),
      ['services:', '- key: frontend.key', '  instances:', `  - address: ${hostnameA}`, `  - address: ${hostnameB}`, ''].join('\n'),
    );
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
    log(`frontend tor bootstrapped; its consensus lists ${hsdirs} HSDirs`);
    // Debian's onionbalance, through the launcher the frontend image runs: its first round
    // pauses initialDelaySeconds instead of its hardcoded 45 s (a timing constant, like the
    // network's TestingTorNetwork intervals; see the launcher's comment).
    const onionbalance = group.spawn('onionbalance', onionbalancePython(onionbalanceBin), [
      join(root, 'docker', 'onionbalance', 'run-onionbalance.py'),
      String(initialDelaySeconds),
      '--is-testnet',
      '-v',
      'info',
      '-p',
      String(frontControl),
      '-c',
      join(dir, 'config.yaml'),
    ]);
    this.#onionbalance = onionbalance;
    // Its log, on disk while it runs (ONIONTURN_KEEP_OB_LOGS=1 keeps the directory).
    const obLog = join(dir, 'onionbalance.log');
    this.#obLog = obLog;
    const dump = setInterval(() => writeFileSync(obLog, onionbalance.output()), 2000);
    dump.unref();
    onionbalance.child.once('exit', () => clearInterval(dump));
    log(`backends A ${hostnameA}, B ${hostnameB}; frontend ${this.frontend.hostname}; onionbalance pid ${onionbalance.pid}`);
  }

  /** A fresh circuit (own SOCKS auth) to the frontend, then the long-term Allocate handshake over TCP. */
  async allocate(timeoutMs = ATTEMPT_TIMEOUT_MS): Promise<Allocated> {
    const t0 = Date.now();
    const sock = await socks5Connect({
      proxyPort: this.net.socksPort,
      host: this.frontend.hostname,
      port: this.#port,
      timeoutMs,
      username: `ob-${Date.now()}-${Math.random()}`,
      password: 'x',
    });
    try {
      const username = formatRestUsername(Math.floor(Date.now() / 1000) + 600, 'ob');
      const { relayed } = await allocateOnStream(sock, { username, password: restPassword(SECRET, username) });
      return { relayHost: relayed.address, ms: Date.now() - t0 };
    } finally {
      sock.destroy();
    }
  }

  /**
   * NEWNYM on the client tor: forgets cached onion descriptors and which HSDirs it already asked.
   * Tor answers 250 at once but delays a NEWNYM sent less than 10 s after the last one ("Rate
   * limiting NEWNYM request"); a delayed one lands during the next allocation, cancels its
   * descriptor fetch and leaves its stream waiting until the attempt times out. So wait it out.
   */
  async newnym(): Promise<void> {
    const wait = this.#lastNewnym + NEWNYM_INTERVAL_MS - Date.now();
    if (wait > 0) await sleep(wait);
    const control = await this.net.control();
    try {
      await control.command('SIGNAL NEWNYM');
      this.#lastNewnym = Date.now();
    } finally {
      control.close();
    }
  }

  /**
   * Allocates until one succeeds (the frontend is reachable once onionbalance has fetched a
   * backend descriptor and uploaded its own); throws after limitMs.
   */
  async firstAllocation(limitMs: number): Promise<Allocated> {
    const t0 = Date.now();
    let lastError = '';
    while (Date.now() - t0 < limitMs) {
      if (this.onionbalance.child.exitCode !== null) throw new Error(`onionbalance exited ${this.onionbalance.child.exitCode}${this.diagnostics()}`);
      try {
        return await this.allocate();
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        // A failed fetch makes the client skip those HSDirs for a while; NEWNYM forgets that.
        await this.newnym();
        await sleep(2000);
      }
    }
    throw new Error(`frontend never reachable within ${limitMs / 1000} s (last error: ${lastError})${this.diagnostics()}`);
  }

  /**
   * New clients pick intro points at random: allocates until both backends have served (once
   * onionbalance lists both); the backends seen and the allocation times. NEWNYM before each: a
   * client keeps a fetched frontend descriptor (until the next time period), and the first one
   * onionbalance publishes may list one backend only, when the other's descriptor has not been
   * fetched yet (the next publish check adds it).
   */
  async bothBackends(seenFirst: string, limitMs: number): Promise<{ seen: string[]; times: number[]; lastError: string }> {
    const seen = new Set([seenFirst]);
    const t0 = Date.now();
    const times: number[] = [];
    let lastError = '';
    while (seen.size < 2 && Date.now() - t0 < limitMs) {
      await this.newnym();
      try {
        const a = await this.allocate();
        seen.add(a.relayHost);
        times.push(a.ms);
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
      }
    }
    return { seen: [...seen].sort(), times, lastError };
  }

  /** Stops backend B's tor (SIGTERM) and waits for it to exit. */
  async stopBackendB(): Promise<void> {
    const b = this.#backendB;
    if (!b) throw new Error('backend B has not started');
    process.kill(b.pid, 'SIGTERM');
    await waitFor('backend B tor to exit', () => b.child.exitCode !== null || b.child.signalCode !== null, 10_000);
  }

  diagnostics(): string {
    const bLog = this.#backendBDir && join(this.#backendBDir, 'notice.log');
    return (
      `\n--- onionbalance (tail) ---\n${this.#onionbalance ? this.#onionbalance.output().slice(-4000) : '(not started)'}` +
      `\n--- backend B tor ---\n${bLog && existsSync(bLog) ? readFileSync(bLog, 'utf8').slice(-1500) : ''}` +
      `\n--- network ---\n${this.#net?.logTail(8) ?? ''}`
    );
  }

  /** Stops everything started; removes the directory unless ONIONTURN_KEEP_OB_LOGS is set. */
  async stop(log: (line: string) => void): Promise<void> {
    if (this.#obLog && this.#onionbalance) writeFileSync(this.#obLog, this.#onionbalance.output());
    await this.group.stopAll();
    await this.#net?.stop();
    if (process.env['ONIONTURN_KEEP_OB_LOGS'] === undefined) rmSync(this.dir, { recursive: true, force: true });
    else log(`logs kept in ${this.dir}`);
  }
}
