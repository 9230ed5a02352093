// A private Tor network of real tor processes on loopback, for tests, benchmarks and `npm start`.
// Topology and timing facts: ../shared/TOR-TESTNET.md. Three nodes are each authority + relay +
// exit; a client offers SOCKS; onion mode adds one relay (a hidden service needs four) and an
// onion-service tor. "Ready" means a real stream through the network echoed bytes back.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsResponder, type DnsResponder } from './dns-responder.js';
import { startEchoServer, type EchoServer } from './echo-server.js';
import { startBulkDownload, type BulkDownload } from './bulk-download.js';
import type { LinkShape } from './link-shaper.js';
import { startShapingProxy, type ShapingProxy } from './shaping-proxy.js';
import { BOTTLENECK_BULK_ADDRESS, BOTTLENECK_LAB_ADDRESS, BOTTLENECK_RELAY_ADDRESS, BottleneckNetwork, type RelayBottleneck } from './relay-bottleneck.js';
import { freePort } from './ports.js';
import { ProcessGroup, sleep, type Started } from './processes.js';
import { socks5Connect } from './socks5.js';
import { TorControl } from './tor-control.js';
import { hasCompleteDirInfo } from './tor-dirinfo.js';
import { authorityKeys, installAuthorityKeys, type AuthorityKeys } from './tor-keys.js';
import { buildTorrc, onionbalanceObConfig, resolvConf, votingStartOffset, type DirAuthority, type TorRole, type TorrcOptions } from './torrc.js';
import { TOOLS, requireTool } from './tools.js';

const AUTHORITIES = 3;
/**
 * Seconds from start to the first valid-after. With a 5 s initial interval there is always one
 * boundary before it; at 5 s that boundary falls within 1 s of tor's start, and a loaded machine
 * then missed the first vote (authorities disagreed on valid-after: +5 s). 6 s never missed here.
 */
const FIRST_VOTE_LEAD_SECONDS = 6;
const DEFAULT_TIMEOUT_MS = 60_000;
/** What each relay's notice log says once its one bandwidth self-test is done, and how long to wait for all (measured: 70-85 s after start). */
const SELF_TEST_DONE = 'Performing bandwidth self-test...done.';
const SELF_TEST_WAIT_MS = 150_000;
/** After the self-tests, the congested relay's router is quiet once it carries less than QUIET_BYTES per QUIET_MS a direction (waited for up to DRAIN_WAIT_MS). */
const QUIET_MS = 2000;
const QUIET_BYTES = 8 * 1024;
const DRAIN_WAIT_MS = 30_000;
/** Any hostname resolves to 127.0.0.1 at the exits; used to prove their DNS works. */
const PROBE_HOSTNAME = 'echo.onionturn.test';

export interface TorNetworkOptions {
  /** Add an onion service; its HiddenServicePort maps targetPort to 127.0.0.1:targetPort. */
  readonly onion?: {
    readonly targetPort?: number;
    readonly extraPorts?: readonly number[];
    /** Make the onion service an Onionbalance backend of this frontend ("<56 chars>.onion"). */
    readonly onionbalanceFrontend?: string;
  };
  /**
   * Plain relays beyond the three authorities (default 1 with `onion`, else 0). Onionbalance
   * 0.2.2 needs at least 5 HSDirs: with fewer, its responsible-HSDir loop never ends.
   */
  readonly extraRelays?: number;
  /** V3AuthVotingInterval, seconds (default VOTING.interval; Onionbalance needs 20, see torrc.ts). */
  readonly votingInterval?: number;
  /**
   * Limit for the whole start, including key generation (default 60 s); with `bottleneck`, the
   * relays' bandwidth self-tests are waited for up to SELF_TEST_WAIT_MS beyond it.
   */
  readonly timeoutMs?: number;
  /** Where authority keys are cached (default <repo>/.cache/tor-keys). */
  readonly keyCacheDir?: string;
  /** Seconds from start to the first consensus valid-after (default 6; tuning knob for measurements). */
  readonly voteLeadSeconds?: number;
  /** Also keep info-level logs (<node dataDir>/info.log) for debugging. */
  readonly infoLogs?: boolean;
  /** Aborts the start (e.g. on Ctrl-C): everything started so far is stopped, then it rejects. */
  readonly signal?: AbortSignal;
  /** Progress messages ("consensus lists 3 relays", ...), e.g. console.log. */
  readonly progress?: (message: string) => void;
  /**
   * Shape every relay's links (see lab-profiles.ts): a shaping proxy listens on each relay's
   * published ORPort and forwards to its real one. Default: unshaped.
   */
  readonly shape?: LinkShape;
  /** Keep a bulk download running through the network once it is ready (competing traffic). */
  readonly bulkDownload?: boolean;
  /** Limit every relay with tor's own BandwidthRate, bytes/s (>= 76800; see torrc.ts). */
  readonly relayBandwidthRate?: number;
  /**
   * Congest the first authority (relay-bottleneck.ts): it runs in a namespace of its own behind a
   * router whose links are limited; the other relays listen on BOTTLENECK_LAB_ADDRESS. The
   * client's circuits go auth1, auth0, auth2; with `bulkDownload`, the bulk has a client of its
   * own and two more relays, the last two (relay3, auth0, relay4; with `secondClient`, relay4,
   * auth0, relay5), on BOTTLENECK_BULK_ADDRESS (the router queues their traffic apart). Ready
   * only once every relay has done its bandwidth self-test. Only inside a lab namespace
   * (runInLabNamespace), not with `onion`.
   */
  readonly bottleneck?: RelayBottleneck;
  /**
   * Start a second client (another user's tor, `TorNetwork.secondClient`). With `bottleneck`
   * its circuits go around the congested relay (auth1, one more relay, auth2), so a call between
   * the two clients' users meets the congested relay on one user's circuits only.
   */
  readonly secondClient?: boolean;
  /** More torrc lines for every node (e.g. ConstrainedSockets for shaped links). */
  readonly torrcExtra?: readonly string[];
}

export interface TorNode {
  readonly name: string;
  readonly role: TorRole;
  readonly dataDir: string;
  readonly controlPort: number;
  readonly pid: number;
  readonly orPort?: number;
  readonly dirPort?: number;
  readonly socksPort?: number;
  readonly fingerprint?: string;
}

export interface TorOnionService {
  /** "<56 base32 chars>.onion" */
  readonly hostname: string;
  /** The virtual port serving onion.targetPort (or the echo port when none was given). */
  readonly port: number;
  /** The network's echo server is also served at this virtual port (used as the probe). */
  readonly echoPort: number;
}

export interface TorNetworkTimings {
  /** Whether authority keys had to be generated (cold cache). */
  readonly freshKeys: boolean;
  readonly keysMs: number;
  /** Start until every authority had a consensus and microdescriptors for every relay. */
  readonly consensusMs: number;
  /** Start until the client reported Bootstrapped 100%. */
  readonly bootstrapMs: number;
  /** Start until the first stream through an exit echoed data. */
  readonly firstStreamMs: number;
  /** Start until the onion service echoed data through the client (onion mode only). */
  readonly onionMs?: number;
}

export interface TorNetwork {
  readonly socksHost: string;
  /** The client's SocksPort on 127.0.0.1. */
  readonly socksPort: number;
  /** The client's ControlPort on 127.0.0.1 (no auth: AUTHENTICATE ""). */
  readonly controlPort: number;
  /** Root temp dir holding every node's DataDirectory (removed by stop()). */
  readonly dataDir: string;
  /** TCP echo server on 127.0.0.1 reachable through the exits. */
  readonly echoPort: number;
  /** The exits' DNS responder (udp 127.0.0.1). */
  readonly dnsPort: number;
  readonly onion?: TorOnionService;
  readonly nodes: readonly TorNode[];
  /** The network's directory authorities: another tor joins with their DirAuthority lines. */
  readonly authorities: readonly DirAuthority[];
  /** PIDs of every tor process this network started. */
  readonly pids: readonly number[];
  readonly timings: TorNetworkTimings;
  /** The shaping proxies in front of the relays' ORPorts (empty when unshaped). */
  readonly shapers: readonly ShapingProxy[];
  /** The second client's ports on 127.0.0.1, when asked for (`TorNetworkOptions.secondClient`). */
  readonly secondClient?: { readonly socksPort: number; readonly controlPort: number };
  /** The competing bulk download, when asked for. */
  readonly bulk?: BulkDownload;
  /** The congested relay's namespaces, when asked for (counters of its router's queues). */
  readonly bottleneck?: BottleneckNetwork;
  /** Median round trip of a few small echoes through a fresh circuit, ms: to the echo server through an exit, or with `onion` through the onion service. */
  measureCircuitRtt(samples?: number, onion?: boolean): Promise<number>;
  /** A new authenticated control connection to the client (caller closes it). */
  control(): Promise<TorControl>;
  /** Resident memory per node in KiB (from /proc), for reports. */
  rssKiB(): Record<string, number>;
  /** The last lines of every node's notice log, for error messages. */
  logTail(lines?: number): string;
  /** Stops exactly the processes started here and removes the temp dirs. Idempotent. */
  stop(): Promise<void>;
}

/** Start failed; everything it had started is already stopped and its temp dir removed. */
export class TorNetworkStartError extends Error {
  /** PIDs that were started (and stopped again), so callers can verify nothing leaked. */
  readonly pids: readonly number[];
  readonly dataDir: string;
  constructor(message: string, pids: readonly number[], dataDir: string, cause: unknown) {
    super(message, { cause });
    this.name = 'TorNetworkStartError';
    this.pids = pids;
    this.dataDir = dataDir;
  }
}

// Safety net: if the test process exits without stop(), kill what is still recorded and remove
// the temp dirs. (tor also exits by itself once its __OwningControllerProcess is gone, which
// covers a SIGKILLed test process.)
const livePids = new Set<number>();
const liveDirs = new Set<string>();
const liveBottlenecks = new Set<BottleneckNetwork>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of livePids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
    for (const b of liveBottlenecks) b.delete();
  });
}

/** Starts the network and resolves once a stream through it works (and the onion, if asked). */
export async function startTorNetwork(options: TorNetworkOptions = {}): Promise<TorNetwork> {
  const t0 = Date.now();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = t0 + timeoutMs;
  const progress = options.progress ?? ((): void => undefined);
  const torPath = requireTool(TOOLS.tor);
  const gencertPath = requireTool(TOOLS.torGencert);

  const group = new ProcessGroup();
  const started: { node: TorNode; proc: Started }[] = [];
  installExitHook();
  const dataDir = await mkdtemp(join(tmpdir(), 'onionturn-tornet-'));
  liveDirs.add(dataDir);
  let echo: EchoServer | undefined;
  let dns: DnsResponder | undefined;
  let bulk: BulkDownload | undefined;
  let bottleneck: BottleneckNetwork | undefined;
  const shapers: ShapingProxy[] = [];
  let stopping: Promise<void> | undefined;

  /** Where a node's notice log is (torrc.ts writes it there). */
  const noticeLog = (node: TorNode): string => join(node.dataDir, 'notice.log');
  const logTail = (lines = 15): string =>
    started
      .map(({ node, proc }) => {
        const file = noticeLog(node);
        const text = existsSync(file) ? readFileSync(file, 'utf8') : proc.output();
        const tail = text.trimEnd().split('\n').slice(-lines).join('\n    ');
        return `  --- ${node.name} (pid ${node.pid}) ---\n    ${tail}`;
      })
      .join('\n');

  const stop = (): Promise<void> =>
    (stopping ??= (async (): Promise<void> => {
      await bulk?.stop();
      await group.stopAll(3000);
      if (bottleneck) {
        bottleneck.delete();
        liveBottlenecks.delete(bottleneck);
      }
      for (const { node } of started) livePids.delete(node.pid);
      await Promise.all([echo?.close(), dns?.close(), ...shapers.map((p) => p.close())]);
      await rm(dataDir, { recursive: true, force: true });
      liveDirs.delete(dataDir);
    })());

  /** Polls probe until it yields a value; fails on the deadline or when any tor has exited. */
  const until = async <T>(what: string, probe: () => Promise<T | undefined>, stepMs: number, by = deadline): Promise<T> => {
    let lastError = '';
    for (;;) {
      if (options.signal?.aborted) throw new Error(`aborted while waiting for ${what}`);
      const dead = started.find(({ proc }) => proc.child.exitCode !== null || proc.child.signalCode !== null);
      if (dead) {
        const why = dead.proc.child.exitCode ?? dead.proc.child.signalCode;
        throw new Error(`tor ${dead.node.name} exited (${String(why)}) while waiting for ${what}:\n${dead.proc.output().trim().slice(-1500)}`);
      }
      try {
        const value = await probe();
        if (value !== undefined) return value;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() >= by) throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}`);
      await sleep(Math.min(stepMs, Math.max(0, by - Date.now())));
    }
  };

  /** wrap: argv that runs tor elsewhere (the congested relay's namespace). */
  const spawnTor = async (
    node: Omit<TorNode, 'pid'>,
    torrc: string,
    wrap?: (command: string, args: readonly string[]) => [string, string[]],
  ): Promise<TorNode> => {
    await mkdir(node.dataDir, { recursive: true, mode: 0o700 });
    const torrcPath = join(node.dataDir, 'torrc');
    await writeFile(torrcPath, torrc + (options.torrcExtra ?? []).map((l) => `${l}\n`).join(''));
    const argv = ['-f', torrcPath, '--defaults-torrc', '/dev/null'];
    const [bin, args] = wrap ? wrap(torPath, argv) : [torPath, argv];
    const proc = group.spawn(node.name, bin, args);
    livePids.add(proc.pid);
    const full: TorNode = { ...node, pid: proc.pid };
    started.push({ node: full, proc });
    return full;
  };

  try {
    echo = await startEchoServer();
    dns = await startDnsResponder();
    const resolvConfPath = join(dataDir, 'resolv.conf');
    await writeFile(resolvConfPath, resolvConf(dns.port));

    const keys: AuthorityKeys[] = await Promise.all(
      Array.from({ length: AUTHORITIES }, (_, i) => authorityKeys(i, { tor: torPath, torGencert: gencertPath }, options.keyCacheDir)),
    );
    const freshKeys = keys.some((k) => k.fresh);
    const keysMs = Date.now() - t0;
    progress(`authority keys ${freshKeys ? 'generated' : 'from cache'} (${keysMs} ms)`);

    // With a congested relay, the bulk download has a client of its own whose circuits cross that
    // relay between two relays of their own (the last two extra relays), so it shares the relay's
    // links (the router's) but none of tor's connections with the other circuits. In a
    // 3-relay network every circuit rode the bulk's TCP connections, whose losses at the router
    // stalled every circuit behind them (head-of-line): bare echoes took 1.3-3.1 s beside the
    // bulk, where a TCP bulk that crossed the router outside tor left them at 0.35-0.5 s.
    const bulkClient = options.bottleneck !== undefined && options.bulkDownload === true;
    // The second client's middle relay, when its circuits go around the congested one.
    const plainExtra = options.extraRelays ?? (options.onion ? 1 : 0);
    const aroundRelay = options.bottleneck !== undefined && options.secondClient === true ? `relay${AUTHORITIES + plainExtra}` : undefined;
    const extraRelays = plainExtra + (aroundRelay ? 1 : 0) + (bulkClient ? 2 : 0);
    // The bulk's relays are the last two (indices of every relay: authorities first).
    const bulkRelayIndex = AUTHORITIES + extraRelays - 2;
    const bulkRelays = [`relay${bulkRelayIndex}`, `relay${bulkRelayIndex + 1}`] as const;
    const clientPorts = 2 + (bulkClient ? 2 : 0) + (options.secondClient ? 2 : 0);
    const ports = await uniquePorts(AUTHORITIES * 3 + extraRelays * (options.shape ? 4 : 3) + clientPorts + 1 + (options.shape ? AUTHORITIES : 0));
    const port = (): number => {
      const p = ports.shift();
      if (p === undefined) throw new Error('internal: ran out of allocated ports');
      return p;
    };
    // With a congested relay (relay-bottleneck.ts) the first authority runs in a namespace of its
    // own; every other relay listens on the lab's end of the link to it, so it can reach them.
    if (options.bottleneck) {
      if (options.onion) throw new Error('a congested relay is not supported with an onion service');
      bottleneck = BottleneckNetwork.create(options.bottleneck);
      liveBottlenecks.add(bottleneck);
    }
    // The bulk's relays have an address of their own, by which the router queues their traffic apart.
    const addressOf = (i: number): string | undefined =>
      !bottleneck ? undefined : i === 0 ? BOTTLENECK_RELAY_ADDRESS : bulkClient && i >= bulkRelayIndex ? BOTTLENECK_BULK_ADDRESS : BOTTLENECK_LAB_ADDRESS;
    // Shaped: the relay publishes (and authorities list) the proxy's port; the proxy forwards
    // to the real ORPort. Every connection to a relay, from a client or another relay, crosses it.
    // Not the congested relay: its links are its router's, and a proxy that stops reading on the
    // lab's side would hold tor's backlog where the router should drop it.
    const shaped = async (realOrPort: number, i: number): Promise<number> => {
      if (!options.shape || (bottleneck && i === 0)) return realOrPort;
      const host = addressOf(i) ?? '127.0.0.1';
      const proxy = await startShapingProxy({ shape: options.shape, targetPort: realOrPort, targetHost: host, host, port: port(), seed: shapers.length + 1 });
      shapers.push(proxy);
      return proxy.port;
    };
    const realOrPorts: number[] = [];
    const authorities: (DirAuthority & { controlPort: number })[] = [];
    for (const [i, k] of keys.entries()) {
      const realOrPort = port();
      realOrPorts.push(realOrPort);
      const address = addressOf(i);
      authorities.push({
        nickname: `auth${i}`,
        ...(address === undefined ? {} : { address }),
        orPort: await shaped(realOrPort, i),
        dirPort: port(),
        controlPort: port(),
        v3ident: k.v3ident,
        fingerprint: k.fingerprint,
      });
    }
    const common = { authorities, owningPid: process.pid, infoLog: options.infoLogs === true } as const;
    const relayRate = options.relayBandwidthRate === undefined ? {} : { bandwidthRate: options.relayBandwidthRate };

    // All relays start together; the first vote is FIRST_VOTE_LEAD_SECONDS away.
    const offset = votingStartOffset(Date.now(), options.voteLeadSeconds ?? FIRST_VOTE_LEAD_SECONDS);
    const relayNodes: TorNode[] = [];
    for (const [i, a] of authorities.entries()) {
      const nodeDir = join(dataDir, a.nickname);
      await installAuthorityKeys(keys[i]!, nodeDir);
      const base = {
        name: a.nickname,
        role: 'authority',
        dataDir: nodeDir,
        controlPort: a.controlPort,
        orPort: a.orPort,
        dirPort: a.dirPort,
        fingerprint: a.fingerprint,
      } as const;
      relayNodes.push(
        await spawnTor(
          base,
          buildTorrc({
            ...common,
            ...relayRate,
            role: 'authority',
            nickname: a.nickname,
            dataDir: nodeDir,
            controlPort: a.controlPort,
            orPort: realOrPorts[i]!,
            advertisedOrPort: a.orPort,
            dirPort: a.dirPort,
            ...(a.address === undefined ? {} : { address: a.address }),
            // The congested relay's namespace has no route to the lab's loopback services.
            exit: !(bottleneck && i === 0),
            resolvConf: resolvConfPath,
            votingStartOffset: offset,
            ...(options.votingInterval === undefined ? {} : { votingInterval: options.votingInterval }),
          }),
          i === 0 ? bottleneck?.wrapRelay.bind(bottleneck) : undefined,
        ),
      );
    }
    for (let i = 0; i < extraRelays; i++) {
      const realOrPort = port();
      const name = `relay${AUTHORITIES + i}`;
      const bulkExit = bulkClient && name === bulkRelays[1];
      const r = { name, dataDir: join(dataDir, name), controlPort: port(), orPort: await shaped(realOrPort, AUTHORITIES + i), dirPort: port() };
      const address = addressOf(AUTHORITIES + i);
      relayNodes.push(
        await spawnTor(
          { ...r, role: 'relay' },
          buildTorrc({
            ...common,
            ...relayRate,
            role: 'relay',
            nickname: r.name,
            dataDir: r.dataDir,
            controlPort: r.controlPort,
            orPort: realOrPort,
            advertisedOrPort: r.orPort,
            dirPort: r.dirPort,
            ...(address === undefined ? {} : { address }),
            ...(bulkExit ? { exit: true, resolvConf: resolvConfPath } : {}),
          }),
        ),
      );
    }
    progress(`started ${relayNodes.length} relays (voting offset ${offset} s${options.shape ? `, links shaped: ${JSON.stringify(options.shape)}` : ''})`);

    // Start clients only once every authority has a consensus listing every relay and holds all
    // their microdescriptors: an earlier client often gets an empty consensus (an extra voting
    // round) or misses a microdescriptor and then waits for tor's 10 s descriptor retry.
    // The bulk client's only guard (its first hop) is also its directory cache: it must hold them too.
    const caches = [...authorities.map((a) => a.nickname), ...(bulkClient ? [bulkRelays[0]] : [])];
    await until(
      `every authority${bulkClient ? ` and ${bulkRelays[0]}` : ''} holding a consensus and microdescriptors for all ${relayNodes.length} relays`,
      async () => ((await Promise.all(caches.map((n) => hasCompleteDirInfo(join(dataDir, n), relayNodes.length)))).every(Boolean) ? true : undefined),
      200,
    );
    const consensusMs = Date.now() - t0;
    progress(`authorities have the consensus and all microdescriptors (${consensusMs} ms)`);

    /** A client tor (its circuits pinned to `path` when given); its node has both ports. */
    const startClient = async (name: string, nickname: string, path?: TorrcOptions['path']): Promise<TorNode & { socksPort: number; controlPort: number }> => {
      const dir = join(dataDir, name);
      const ports = { socksPort: port(), controlPort: port() };
      const node = await spawnTor(
        { name, role: 'client', dataDir: dir, ...ports },
        buildTorrc({ ...common, role: 'client', nickname, dataDir: dir, ...ports, ...(path ? { path } : {}) }),
      );
      return { ...node, ...ports };
    };
    // Every circuit crosses the congested relay, in the middle (both of its links).
    const client = await startClient('client', 'client', bottleneck ? { entry: 'auth1', middle: 'auth0', exit: 'auth2' } : undefined);
    const socksPort = client.socksPort;
    const clients: TorNode[] = [client];
    const second = options.secondClient
      ? await startClient('client-b', 'clientb', aroundRelay ? { entry: 'auth1', middle: aroundRelay, exit: 'auth2' } : undefined)
      : undefined;
    if (second) clients.push(second);
    const secondClient = second ? { socksPort: second.socksPort, controlPort: second.controlPort } : undefined;
    const bulkNode = bulkClient ? await startClient('bulk', 'bulk', { entry: bulkRelays[0], middle: 'auth0', exit: bulkRelays[1] }) : undefined;
    if (bulkNode) clients.push(bulkNode);
    const bulkSocksPort = bulkNode?.socksPort;
    let onionNode: TorNode | undefined;
    const onionPorts = options.onion ? [...new Set([echo.port, options.onion.targetPort ?? echo.port, ...(options.onion.extraPorts ?? [])])] : [];
    if (options.onion) {
      const dir = join(dataDir, 'onion');
      const cp = port();
      const frontend = options.onion.onionbalanceFrontend;
      if (frontend !== undefined) {
        // tor reads ob_config from the HiddenServiceDir at start; it must exist first (mode 0700).
        await mkdir(join(dir, 'hs'), { recursive: true, mode: 0o700 });
        await writeFile(join(dir, 'hs', 'ob_config'), onionbalanceObConfig(frontend));
      }
      onionNode = await spawnTor(
        { name: 'onion', role: 'onion', dataDir: dir, controlPort: cp },
        buildTorrc({
          ...common,
          role: 'onion',
          nickname: 'onion',
          dataDir: dir,
          controlPort: cp,
          hiddenServiceDir: join(dir, 'hs'),
          hiddenServicePorts: onionPorts,
          onionbalanceInstance: frontend !== undefined,
        }),
      );
    }

    // One control connection per client for the whole wait: tor logs every new one at notice
    // level, and a connection per poll buried a failed start's log tail under those lines.
    const controls = new Map<string, TorControl>();
    try {
      await until(
        `${clients.map((c) => c.name).join(' and ')} Bootstrapped 100%`,
        async () => {
          for (const c of clients) {
            let control = controls.get(c.name);
            if (control === undefined) controls.set(c.name, (control = await TorControl.connect(c.controlPort)));
            try {
              if ((await control.bootstrapProgress()) !== 100) return undefined;
            } catch (err) {
              control.close();
              controls.delete(c.name);
              throw err;
            }
          }
          return true;
        },
        250,
      );
    } finally {
      for (const control of controls.values()) control.close();
    }
    const bootstrapMs = Date.now() - t0;
    progress(`client bootstrapped (${bootstrapMs} ms)`);

    const echoPort = echo.port;
    await until('a stream through an exit to the echo server', () => echoProbe(socksPort, '127.0.0.1', echoPort, deadline), 500);
    const firstStreamMs = Date.now() - t0;
    progress(`stream through an exit works (${firstStreamMs} ms)`);
    await until(`exits resolving ${PROBE_HOSTNAME} through the test DNS responder`, () => echoProbe(socksPort, PROBE_HOSTNAME, echoPort, deadline), 500);
    if (second) {
      const secondSocks = second.socksPort;
      await until('a stream through the second client', () => echoProbe(secondSocks, '127.0.0.1', echoPort, deadline), 500);
    }

    let onion: TorOnionService | undefined;
    let onionMs: number | undefined;
    if (options.onion && onionNode) {
      const hostnameFile = join(onionNode.dataDir, 'hs', 'hostname');
      const hostname = await until('the onion service hostname file', async () => (await readFile(hostnameFile, 'utf8')).trim() || undefined, 200);
      // The first attempts fail (SOCKS 0x04) until the descriptor is uploaded; retry each second.
      await until(`the onion service ${hostname} via SOCKS`, () => echoProbe(socksPort, hostname, echoPort, deadline), 1000);
      onionMs = Date.now() - t0;
      onion = { hostname, port: options.onion.targetPort ?? echoPort, echoPort };
      progress(`onion service reachable (${onionMs} ms)`);
    }

    if (bottleneck) {
      const { rateKbps, queueMs } = bottleneck.bottleneck;
      progress(`relay auth0 runs behind a router whose links carry ${rateKbps} kbit/s per direction (drop-tail queues of ${queueMs} ms)`);
      // Once, a minute or so after it starts, every relay sends ~500 KB of drop cells through
      // testing circuits of its own (tor's bandwidth self-test, AssumeReachable or not), many of
      // them across the congested relay: 10-15 s of backlog there for whatever else crosses it
      // (bare echoes stalled for up to 14 s). Ready only once every relay is done.
      // Each poll reads only the logs of relays not yet done.
      let pending = started.filter(({ node }) => node.role === 'authority' || node.role === 'relay').map(({ node }) => node);
      await until(
        'every relay to finish its bandwidth self-test',
        async () => {
          pending = pending.filter((n) => !readFileSync(noticeLog(n), 'utf8').includes(SELF_TEST_DONE));
          return pending.length === 0 ? true : undefined;
        },
        1000,
        Date.now() + SELF_TEST_WAIT_MS,
      );
      progress(`every relay has done its bandwidth self-test (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
      // Tor logs that line once it has queued the test's cells; through the congested relay they
      // take seconds more to drain (an echo measured right after waited 1076 ms). Ready once the
      // router has carried less than QUIET_BYTES a direction over QUIET_MS (nothing else runs yet).
      const quietBy = Date.now() + DRAIN_WAIT_MS;
      let before = bottleneck.counters();
      for (;;) {
        await sleep(QUIET_MS);
        const now = bottleneck.counters();
        const moved = Math.max(now.in.sentBytes - before.in.sentBytes, now.out.sentBytes - before.out.sentBytes);
        before = now;
        if (moved < QUIET_BYTES) break;
        if (Date.now() > quietBy) {
          progress(`the congested relay's router still carries ${moved} bytes per ${QUIET_MS} ms; going on`);
          break;
        }
      }
      progress(`the congested relay's router is quiet (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
    if (options.bulkDownload) {
      bulk = await startBulkDownload({ socksPort: bulkSocksPort ?? socksPort });
      progress('bulk download through the network started');
    }

    const nodes = started.map((s) => s.node);
    const timings: TorNetworkTimings = { freshKeys, keysMs, consensusMs, bootstrapMs, firstStreamMs, ...(onionMs === undefined ? {} : { onionMs }) };
    const dnsPort = dns.port;
    return {
      socksHost: '127.0.0.1',
      socksPort,
      controlPort: client.controlPort,
      dataDir,
      echoPort,
      dnsPort,
      ...(onion ? { onion } : {}),
      nodes,
      authorities: authorities.map(({ nickname, orPort, dirPort, v3ident, fingerprint }) => ({ nickname, orPort, dirPort, v3ident, fingerprint })),
      pids: nodes.map((n) => n.pid),
      timings,
      shapers,
      ...(secondClient ? { secondClient } : {}),
      ...(bulk ? { bulk } : {}),
      ...(bottleneck ? { bottleneck } : {}),
      measureCircuitRtt: (samples = 5, viaOnion = false) => {
        if (viaOnion && !onion) throw new Error('measureCircuitRtt(onion): this network has no onion service');
        return measureCircuitRtt(socksPort, viaOnion && onion ? onion.hostname : '127.0.0.1', echoPort, samples);
      },
      control: () => TorControl.connect(client.controlPort),
      rssKiB: () => Object.fromEntries(nodes.map((n) => [n.name, rssKiB(n.pid)])),
      logTail,
      stop,
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const tail = logTail();
    await stop();
    const text = `tor test network failed to start after ${Date.now() - t0} ms: ${message}${tail ? `\ntor logs (tail):\n${tail}` : ''}`;
    throw new TorNetworkStartError(
      text,
      started.map((s) => s.node.pid),
      dataDir,
      err,
    );
  }
}

/** One SOCKS CONNECT + echo round trip; true on success, throws with the reason otherwise. */
async function echoProbe(socksPort: number, host: string, port: number, deadline: number): Promise<true> {
  const timeoutMs = Math.max(1000, Math.min(15_000, deadline - Date.now()));
  const socket = await socks5Connect({ proxyPort: socksPort, host, port, timeoutMs });
  try {
    const payload = randomBytes(16);
    const echoed = await new Promise<Buffer>((resolve, reject) => {
      let got = Buffer.alloc(0);
      const timer = setTimeout(() => reject(new Error(`no echo from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
      socket.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (got.length >= payload.length) {
          clearTimeout(timer);
          resolve(got);
        }
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      socket.write(payload);
    });
    if (!echoed.subarray(0, payload.length).equals(payload)) throw new Error(`echo from ${host}:${port} returned different bytes`);
    return true;
  } finally {
    socket.destroy();
  }
}

/** Median echo round trip of `samples` small messages on one fresh circuit (own SOCKS auth). */
export async function measureCircuitRtt(socksPort: number, host: string, echoPort: number, samples = 5): Promise<number> {
  const socket = await socks5Connect({
    proxyPort: socksPort,
    host,
    port: echoPort,
    timeoutMs: 30_000,
    username: `rtt-${randomBytes(6).toString('hex')}`,
    password: 'x',
  });
  try {
    const rtts: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t = performance.now();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('circuit RTT probe timed out')), 15_000);
        socket.once('data', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('error', reject);
        socket.write('p');
      });
      rtts.push(performance.now() - t);
    }
    rtts.sort((x, y) => x - y);
    return rtts[Math.floor(rtts.length / 2)]!;
  } finally {
    socket.destroy();
  }
}

async function uniquePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

function rssKiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}
