// `onionturn client`: the local TURN shim. Wiring only: parse options into ShimOptions, find the
// SOCKS port (or start a tor of our own), start, print the iceServers to paste into an app, stop
// on SIGINT/SIGTERM, also while that tor is still bootstrapping.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { CommandModule } from 'yargs';
import {
  ISOLATION_MODES,
  SecretCredentialSource,
  DEFAULT_NEW_FLOWS_PER_SECOND,
  checkTorSocks,
  Shim,
  UrlCredentialSource,
  createLogger,
  formatHostPort,
  iceServers,
  isLoopbackAddress,
  isOnionForward,
  parseForward,
  type ForwardSpec,
  parseHostPort,
  parseListen,
  parsePin,
  parseUpstream,
  startManagedTor,
  StatusServer,
  TorWatch,
  formatPin,
  type IceServer,
  type HostPort,
  type ManagedTor,
  type CredentialSource,
  type IsolationMode,
  type LocalAuthConfig,
  type TlsTrust,
  type UpstreamServer,
  SERVER_CHOICES,
  DEFAULT_READY_STREAM,
  type ServerChoiceMode,
} from '@onionturn/client';
import type { CliContext } from '../cli-context.js';
import { givenOnCommandLine, positiveInteger, readSecretFile, wholeNumber } from '../config.js';
import { loadOrCreateLocalPassword, localPasswordPath } from '../local-password.js';
import { UsageError } from '../exit-codes.js';
import { watchStopSignals } from '../stop-signals.js';
import { DEFAULT_MAX_QUEUE_DELAY_MS, canConnect, errorText } from '@onionturn/io';
import { createShimMetrics } from '../shim-metrics.js';
import { loadOrCreateStatusPort, statusPortPath } from '../status-port.js';

interface ClientArgs {
  listen: string;
  allowRemote: boolean;
  server?: string[];
  serverChoice: ServerChoiceMode;
  readyStream: boolean;
  socks?: string;
  isolation: IsolationMode;
  pin?: string[];
  ca?: string;
  logSensitive: boolean;
  logLevel: string;
  localUser?: string;
  localPassword?: string;
  upstreamSecretFile?: string;
  credentialsUrl?: string;
  upstreamTtl: number;
  newFlowsPerSecond: number;
  maxQueueDelayMs: number;
  delayFeedback: boolean;
  tor: boolean;
  torDataDir?: string;
  torConfig?: string;
  torPath?: string;
  defaultSocks: string;
  allowPlaintextUpstream: boolean;
  allowNonTorSocks: boolean;
  socksListen?: string;
  forward?: string[];
  /** HOST:PORT, false for --no-status, undefined for the kept random port. */
  status?: string | false;
}

/** The local user when --local-user is not given; the password is never a fixed default. */
const DEFAULT_LOCAL_USER = 'onionturn';
const LOCAL_REALM = 'onionturn.local';
/** A long call: credentials made for flows should outlive it (4 hours). */
const LONG_CALL_S = 4 * 3600;

interface LocalAuthPlan {
  readonly make: (socks: HostPort) => LocalAuthConfig;
  /** Where the password came from, for the log when it is not the user's own. */
  readonly note: string | undefined;
}

/** Local-credential mode when any of its options is given; undefined means pass-through. */
function localAuthOf(args: ClientArgs, ctx: CliContext): LocalAuthPlan | undefined {
  const wanted = args.localUser !== undefined || args.localPassword !== undefined || args.upstreamSecretFile !== undefined || args.credentialsUrl !== undefined;
  if (!wanted) return undefined;
  if (args.upstreamSecretFile !== undefined && args.credentialsUrl !== undefined)
    throw new UsageError('give either --upstream-secret-file or --credentials-url, not both');
  let source: (socks: HostPort) => CredentialSource;
  if (args.upstreamSecretFile !== undefined) {
    const secret = readSecretFile(args.upstreamSecretFile, ({ path }) => ctx.warn(`secret file ${path} is readable by others (chmod 600 ${path})`));
    const ttl = positiveInteger('upstream-ttl', args.upstreamTtl);
    // The server ends an allocation with its credential (strict expiry), and the username of an
    // allocation cannot change: the credential's lifetime is the longest call.
    if (ttl < LONG_CALL_S)
      ctx.warn(`--upstream-ttl ${ttl}: calls end when their credential expires (the server's strict expiry); ${LONG_CALL_S} s or more lets a long call last`);
    const made = new SecretCredentialSource(secret, ttl);
    source = () => made;
  } else if (args.credentialsUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(args.credentialsUrl);
    } catch {
      // Not echoed: the value may hold an API key, and stderr often ends up in a log.
      throw new UsageError('--credentials-url is not a URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new UsageError('--credentials-url must be http:// or https:// (an onion service or TLS; it is fetched through Tor)');
    source = (socks) => new UrlCredentialSource(url, socks, { timeoutMs: 30_000, detail: args.logSensitive });
  } else {
    throw new UsageError('local credentials need an upstream credential source: --upstream-secret-file FILE or --credentials-url URL');
  }
  const username = args.localUser ?? DEFAULT_LOCAL_USER;
  if (username === '' || args.localPassword === '') throw new UsageError('--local-user and --local-password must not be empty');
  if (givenOnCommandLine(ctx.rawArgv, 'local-password')) {
    ctx.warn('--local-password shows the password to every user via ps; use ONIONTURN_LOCAL_PASSWORD, or leave it out for a random one kept in a 0600 file');
  }
  let password = args.localPassword;
  let note: string | undefined;
  if (password === undefined) {
    // Random, kept in a 0600 file so the app's config survives restarts; printed in iceServers.
    const path = localPasswordPath();
    const kept = loadOrCreateLocalPassword(path, (mode) =>
      ctx.warn(`local password file ${path} has mode ${mode.toString(8).padStart(4, '0')}; others can read it (chmod 600 ${path})`),
    );
    password = kept.password;
    note = `local password ${kept.created ? 'generated and saved in' : 'read from'} ${path} (it is in the iceServers printed on stdout; --local-password sets your own)`;
  }
  const local = { username, password, realm: LOCAL_REALM };
  return { make: (socks) => ({ local, source: source(socks) }), note };
}

/**
 * Plain TURN (tcp://) or HTTP to a host that is not an onion service crosses the exit relay in
 * the clear: the exit reads whom the user calls (XOR-PEER-ADDRESS), the credential, and can
 * rewrite it. Refused unless the user says it is a test; tls:// with --pin or .onion is the way.
 */
function plaintextCheck(args: ClientArgs, servers: readonly UpstreamServer[], ctx: CliContext): void {
  const isOnion = (host: string): boolean => /\.onion\.?$/i.test(host);
  const clear: string[] = servers.filter((s) => s.transport === 'tcp' && !isOnion(s.host)).map((s) => `--server ${s.label}`);
  if (args.credentialsUrl !== undefined) {
    try {
      const url = new URL(args.credentialsUrl);
      if (url.protocol === 'http:' && !isOnion(url.hostname)) clear.push('a plain-HTTP --credentials-url');
    } catch {
      // reported by localAuthOf
    }
  }
  if (clear.length === 0) return;
  const why = `${clear.join(' and ')} would cross the Tor exit in the clear: the exit relay could read whom you call and your credentials`;
  if (!args.allowPlaintextUpstream)
    throw new UsageError(`${why}; use tls://HOST:PORT with --pin, an .onion address, or https:// (--allow-plaintext-upstream for tests)`);
  ctx.warn(`${why} (--allow-plaintext-upstream is on: for tests only)`);
}

/** Refuses a SOCKS proxy that is not Tor (see tor-socks-check.ts), unless told it is a test. */
async function requireTor(socks: HostPort, allowNonTor: boolean, ctx: CliContext, logger: ReturnType<typeof createLogger>): Promise<void> {
  const v = await checkTorSocks(socks);
  const at = formatHostPort(socks.host, socks.port);
  if (v.kind === 'tor') return;
  if (v.kind === 'unreachable') {
    logger.warn(`nothing answers at SOCKS ${at} yet (${v.reason}); flows will fail until tor runs there`);
    return;
  }
  const why = `the SOCKS proxy at ${at} is not Tor (${v.reason}): traffic through it would leave without Tor`;
  if (!allowNonTor)
    throw new UsageError(`${why}; point --socks at tor's SocksPort, or run without --socks to start a tor of our own (--allow-non-tor-socks for tests)`);
  ctx.warn(`${why} (--allow-non-tor-socks is on: for tests only)`);
}

/** Tor's usual SOCKS ports: the tor daemon, then Tor Browser. */
const DEFAULT_SOCKS = '127.0.0.1:9050,127.0.0.1:9150';

/** The --default-socks list (comma-separated HOST:PORT; empty: try none, always start our own tor). */
export function socksCandidates(text: string): HostPort[] {
  return text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '')
    .map((t) => {
      const r = parseHostPort(t);
      if (!r.ok) throw new UsageError(`--default-socks: ${r.reason}`);
      return r.value;
    });
}

function describeCandidates(list: readonly HostPort[]): string {
  return list.length === 0 ? 'no default SOCKS port to try' : `no SOCKS port answers at ${list.map((c) => formatHostPort(c.host, c.port)).join(' or ')}`;
}

export interface StatusPlan {
  readonly listen: HostPort;
  /** The kept default port (a taken one turns the page off with a warning instead of failing). */
  readonly kept: boolean;
}

/** --status HOST:PORT (loopback IP), --no-status, or the kept random port. */
export function statusPlanOf(value: string | boolean | undefined): StatusPlan | undefined {
  if (value === false) return undefined;
  if (value === undefined || value === true) return { listen: { host: '127.0.0.1', port: loadOrCreateStatusPort(statusPortPath()).port }, kept: true };
  const r = parseHostPort(value, true);
  if (!r.ok) throw new UsageError(`--status: ${r.reason}`);
  if (isIP(r.value.host) === 0 || !isLoopbackAddress(r.value.host)) {
    throw new UsageError(`--status: ${r.value.host} is not a loopback IP address; the status page listens on 127.0.0.1 or ::1 only (or give --no-status)`);
  }
  return { listen: r.value, kept: false };
}

const PASS_THROUGH_NOTE =
  "Your app's server makes them from the TURN server's shared secret (REST credentials: the @onionturn/credentials library, or the server's credential endpoint, or `onionturn credentials` for a test) and gives them to the app, which puts them in iceServers next to the shim's turn: URLs.";

function asList(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

interface DatagramPlan {
  readonly socksListen: HostPort | undefined;
  readonly forwards: ForwardSpec[];
  /** SOCKS UDP or a forward to an IP/host name: the shim is the TURN client and signs requests. */
  readonly needsCredentials: boolean;
}

/** --socks-listen and --forward, checked (loopback only; one line and exit 2 otherwise). */
function datagramPlanOf(args: ClientArgs): DatagramPlan {
  let socksListen: HostPort | undefined;
  if (args.socksListen !== undefined) {
    const r = parseHostPort(args.socksListen);
    if (!r.ok) throw new UsageError(`--socks-listen: ${r.reason}; use 127.0.0.1:PORT`);
    if (!isLoopbackAddress(r.value.host) || isIP(r.value.host) === 0)
      throw new UsageError(`--socks-listen ${args.socksListen}: the SOCKS front end listens on a loopback IP address only (127.0.0.1:PORT or [::1]:PORT)`);
    socksListen = r.value;
  }
  const forwards = asList(args.forward).map((text) => {
    const r = parseForward(text);
    if (!r.ok) throw new UsageError(`--forward: ${r.reason}`);
    return r.value;
  });
  return { socksListen, forwards, needsCredentials: socksListen !== undefined || forwards.some((f) => !isOnionForward(f)) };
}

export function clientCommand(ctx: CliContext): CommandModule {
  return {
    command: 'client',
    describe: 'run the local TURN shim: apps speak TURN to it, it carries each flow through its own Tor stream',
    builder: (y) =>
      y
        .option('listen', { type: 'string', default: '127.0.0.1:3478', requiresArg: true, describe: 'UDP and TCP listener (loopback unless --allow-remote)' })
        .option('allow-remote', { type: 'boolean', default: false, describe: 'allow a non-loopback --listen address' })
        .option('server', {
          type: 'string',
          array: true,
          requiresArg: true,
          describe: 'upstream tcp://HOST:PORT, tls://HOST:PORT or HOST.onion:PORT; repeat for several servers (see --server-choice)',
        })
        .option('server-choice', {
          choices: SERVER_CHOICES,
          default: 'failover' as ServerChoiceMode,
          describe:
            'with several --server: failover: every flow to the server that worked last (the first given, the rest as backups); round-robin: new flows take the servers in turn; random: one at random. A server whose dial failed is skipped for new flows for 30 s, doubling per failure in a row, up to 10 min',
        })
        .option('ready-stream', {
          type: 'boolean',
          default: true,
          describe:
            'keep one Tor stream to the server open ahead of need while an app has opened a flow in the last 10 minutes, so a new flow skips building a circuit (replaced every 20 s, before the server closes it; --no-ready-stream: none)',
        })
        .option('socks', { type: 'string', requiresArg: true, describe: "Tor's SOCKS port (default 127.0.0.1:9050, then 9150)" })
        .option('isolation', {
          choices: ISOLATION_MODES,
          default: 'per-flow' as IsolationMode,
          describe:
            'per-flow: a circuit per app flow; shared: one for all, so any web page that sends TURN to the shim shares the circuit (and exit address) of your own calls (both by SOCKS username/password, which tor honours; a proxy that picks no authentication gets one warning and no isolation)',
        })
        .option('pin', { type: 'string', array: true, requiresArg: true, describe: 'tls:// server key pin sha256/BASE64 (SPKI); repeatable' })
        .option('ca', { type: 'string', requiresArg: true, describe: 'PEM CA file for tls:// servers (when not pinning)' })
        .option('tor', {
          type: 'boolean',
          default: false,
          describe: 'start a tor of our own (also the default when no --socks is given and nothing answers at 9050/9150)',
        })
        .option('tor-data-dir', { type: 'string', requiresArg: true, describe: "the own tor's DataDirectory (default: a temporary one)" })
        .option('tor-config', {
          type: 'string',
          requiresArg: true,
          describe: "file of extra torrc lines for the own tor (bridges, a test network's DirAuthority lines)",
        })
        .option('tor-path', { type: 'string', requiresArg: true, describe: 'the tor executable for --tor (default: tor on PATH)' })
        // For tests (env ONIONTURN_DEFAULT_SOCKS): the "nothing answers, start our own tor" default
        // must not depend on whether this machine runs a tor at 9050/9150. Hidden: users have --socks.
        .option('default-socks', {
          type: 'string',
          default: DEFAULT_SOCKS,
          hidden: true,
          describe: 'SOCKS ports tried in order when neither --socks nor --tor is given (comma-separated HOST:PORT)',
        })
        .option('local-user', {
          type: 'string',
          requiresArg: true,
          describe: `local-credential mode: the user apps authenticate with (default ${DEFAULT_LOCAL_USER})`,
        })
        .option('local-password', {
          type: 'string',
          requiresArg: true,
          describe:
            'local-credential mode: the password apps use (default: a random one kept in $XDG_CONFIG_HOME/onionturn/local-password, ~/.config/... without XDG_CONFIG_HOME; printed in iceServers) [env ONIONTURN_LOCAL_PASSWORD]',
        })
        .option('upstream-secret-file', {
          type: 'string',
          requiresArg: true,
          describe: 'local mode: sign upstream with REST credentials made from this shared secret (you run the server too)',
        })
        .option('credentials-url', {
          type: 'string',
          requiresArg: true,
          describe: 'local mode: fetch a REST credential per flow from this URL (JSON {username,password,ttl,uris}) through Tor',
        })
        .option('upstream-ttl', {
          type: 'number',
          default: 86_400,
          requiresArg: true,
          describe:
            'lifetime in seconds of credentials made from --upstream-secret-file: the longest call, since the server ends an allocation with its credential',
        })
        .option('new-flows-per-second', {
          type: 'number',
          default: DEFAULT_NEW_FLOWS_PER_SECOND,
          requiresArg: true,
          describe:
            "pass-through mode: new app flows (each a Tor stream, with per-flow isolation a circuit) allowed per second, in bursts of four seconds' worth; 0: no limit",
        })
        .option('max-queue-delay-ms', {
          type: 'number',
          default: DEFAULT_MAX_QUEUE_DELAY_MS,
          requiresArg: true,
          describe:
            'app datagrams waiting longer than this (ms) to go into their Tor stream are dropped, not sent late (video first; TURN requests, ICE checks, DTLS handshakes and RTCP never); 0: only the 1 MiB byte bound',
        })
        .option('delay-feedback', {
          type: 'boolean',
          default: true,
          describe:
            "offer the delay extension to the server (DELAY-FEEDBACK at Allocate, UDP app flows): with an onionturn server both ends report delay every ~50 ms and cap what is in flight inside Tor, trading loss for delay when Tor carries less than the app sends; needs --max-queue-delay-ms > 0. --no-delay-feedback: never offered (Tor's queues then hold the backlog: seconds of delay, less loss)",
        })
        .option('allow-non-tor-socks', {
          type: 'boolean',
          default: false,
          describe: 'TESTS ONLY: use a SOCKS proxy that is not Tor (without it the shim refuses one: e.g. ssh -D 9050 would carry your traffic without Tor)',
        })
        .option('allow-plaintext-upstream', {
          type: 'boolean',
          default: false,
          describe:
            'TESTS ONLY: allow tcp:// to a server that is not .onion, and an http:// --credentials-url that is not .onion (the exit relay could read whom you call and your credentials)',
        })
        .option('socks-listen', {
          type: 'string',
          requiresArg: true,
          describe:
            'SOCKS5 front end for UDP apps (UDP ASSOCIATE only) on this loopback HOST:PORT; IP and host-name destinations go through the exit-side server as TURN (needs --upstream-secret-file or --credentials-url), NAME.onion:PORT to a datagram onion service',
        })
        .option('forward', {
          type: 'string',
          array: true,
          requiresArg: true,
          describe:
            'UDP port forward udp://127.0.0.1:LPORT=HOST:PORT (repeatable): each local source is one flow to HOST:PORT, by the same routes as --socks-listen',
        })
        .option('status', {
          type: 'string',
          requiresArg: true,
          describe:
            'the status page and /metrics at http://HOST:PORT/ (loopback only; default 127.0.0.1 at a port chosen at random on first start and kept in $XDG_CONFIG_HOME/onionturn/status-port); --no-status turns it off',
        })
        .option('log-sensitive', { type: 'boolean', default: false, describe: 'log app addresses and server names (debugging only; off: SafeLogging)' })
        .option('log-level', { choices: ['error', 'warn', 'info', 'debug'], default: 'info' }),
    handler: async (argv) => {
      const args = argv as unknown as ClientArgs;
      const servers: UpstreamServer[] = [];
      for (const text of asList(args.server)) {
        const r = parseUpstream(text);
        if (!r.ok) throw new UsageError(`--server: ${r.reason}`);
        servers.push(r.value);
      }
      if (servers.length === 0) throw new UsageError('no upstream: give --server tcp://HOST:PORT, tls://HOST:PORT or HOST.onion:PORT');
      if (!(Number.isFinite(args.newFlowsPerSecond) && args.newFlowsPerSecond >= 0)) {
        throw new UsageError(`--new-flows-per-second must be a number of 0 or more (0: no limit), got '${String(args.newFlowsPerSecond)}'`);
      }
      wholeNumber('max-queue-delay-ms', args.maxQueueDelayMs, { min: 0, note: '0: no time bound' });
      const listen = parseListen(args.listen, args.allowRemote);
      if (!listen.ok) throw new UsageError(`--${listen.reason}`);
      const pins = asList(args.pin).map((p) => {
        const r = parsePin(p);
        if (!r.ok) throw new UsageError(`--pin: ${r.reason}`);
        return r.value;
      });
      let ca: Buffer | undefined;
      if (args.ca !== undefined) {
        try {
          ca = readFileSync(args.ca);
        } catch (error) {
          throw new UsageError(`cannot read --ca ${args.ca}: ${errorText(error)}`);
        }
      }
      let extraTorConfig: string | undefined;
      if (args.torConfig !== undefined) {
        try {
          extraTorConfig = readFileSync(args.torConfig, 'utf8');
        } catch (error) {
          throw new UsageError(`cannot read --tor-config ${args.torConfig}: ${errorText(error)}`);
        }
      }
      // Checked before any tor starts: a usage mistake costs no bootstrap.
      const datagrams = datagramPlanOf(args);
      const localPlan = localAuthOf(args, ctx);
      if (datagrams.needsCredentials && localPlan === undefined) {
        throw new UsageError(
          `${args.socksListen !== undefined ? '--socks-listen' : '--forward to an IP address or host name'} signs its TURN requests with the shim's own upstream credentials: give --upstream-secret-file FILE or --credentials-url URL (.onion forwards need none)`,
        );
      }
      const statusPlan = statusPlanOf(args.status);
      if (args.tor && args.socks !== undefined) throw new UsageError('give either --tor (start our own tor) or --socks (use a running one), not both');
      let socks: HostPort | undefined;
      if (args.socks !== undefined) {
        const r = parseHostPort(args.socks);
        if (!r.ok) throw new UsageError(`--socks: ${r.reason}`);
        socks = r.value;
      }
      const candidates = socksCandidates(args.defaultSocks);
      plaintextCheck(args, servers, ctx);
      const logger = createLogger({ level: args.logLevel });
      // From here on a signal stops whatever is under way, including a tor that is bootstrapping.
      const stop = watchStopSignals((name, first) => logger.info(first ? `${name}: stopping` : `${name} again: exiting at once`));
      let ownTor: ManagedTor | undefined;
      const tor = new TorWatch();
      const running: RunningShim = { shim: undefined, ice: undefined };
      let status: StatusServer | undefined;
      try {
        if (statusPlan) status = await startStatus(statusPlan, tor, running, pins.map(formatPin), logger);
        if (socks === undefined && !args.tor) {
          for (const candidate of candidates) {
            if (stop.signal.aborted) return;
            if (await canConnect(candidate.host, candidate.port)) {
              socks = candidate;
              break;
            }
          }
        }
        if (stop.signal.aborted) return;
        tor.socks = socks;
        if (!socks) {
          if (!args.tor) logger.info(`${describeCandidates(candidates)}: starting a tor of our own`);
          tor.managed = true;
          const r = await startManagedTor({
            logger,
            signal: stop.signal,
            onBootstrap: (percent, summary) => {
              tor.bootstrapPercent = percent;
              tor.bootstrapSummary = summary;
            },
            onRestart: (restarts) => {
              tor.restarts = restarts;
            },
            ...(args.torPath !== undefined ? { torPath: args.torPath } : {}),
            ...(args.torDataDir !== undefined ? { dataDir: args.torDataDir } : {}),
            ...(extraTorConfig !== undefined ? { extraConfig: extraTorConfig } : {}),
          });
          if (!r.ok && r.error.code === 'aborted') {
            logger.info(
              `stopped on ${String(stop.signal.reason)} before tor finished bootstrapping; tor is stopped${args.torDataDir === undefined ? ' and its temporary data directory removed' : ''}`,
            );
            return;
          }
          if (!r.ok) throw new Error(args.tor ? r.error.reason : `${describeCandidates(candidates)}, and ${r.error.reason}`);
          ownTor = r.value;
          socks = ownTor.socks;
          tor.socks = socks;
          logger.info('tor ready', { socks: formatHostPort(ownTor.socks.host, ownTor.socks.port), pid: ownTor.pid });
        }
        const socksPort: HostPort = socks;
        // Our own tor is Tor; anything else found at --socks or 9050/9150 must show it is.
        if (!ownTor) await requireTor(socksPort, args.allowNonTorSocks, ctx, logger);
        if (stop.signal.aborted) return;
        await runShim(
          args,
          ctx,
          logger,
          {
            datagrams,
            listen: listen.value,
            servers,
            socks: socksPort,
            tls: { pins, ...(ca ? { ca } : {}) },
            localAuth: localPlan?.make(socksPort),
            localPasswordNote: localPlan?.note,
            stop: stop.signal,
          },
          running,
        );
      } finally {
        await status?.stop();
        await ownTor?.stop();
        stop.dispose();
      }
    },
  };
}

interface ShimPlan {
  readonly datagrams: DatagramPlan;
  readonly listen: HostPort;
  readonly servers: UpstreamServer[];
  readonly socks: HostPort;
  readonly tls: TlsTrust;
  readonly localAuth: LocalAuthConfig | undefined;
  readonly localPasswordNote: string | undefined;
  /** Aborted by SIGINT/SIGTERM. */
  readonly stop: AbortSignal;
}

/** Runs the shim until `plan.stop` is aborted (SIGINT/SIGTERM). */
/** What the status page reads of the shim once it runs. */
interface RunningShim {
  shim: Shim | undefined;
  /** Local mode: the iceServers with the local credentials. */
  ice: IceServer[] | undefined;
}

/** Starts the status page (before tor: it shows tor bootstrapping); undefined when the kept port is taken. */
async function startStatus(
  plan: StatusPlan,
  tor: TorWatch,
  running: RunningShim,
  pins: string[],
  logger: ReturnType<typeof createLogger>,
): Promise<StatusServer | undefined> {
  const metrics = createShimMetrics(() => running.shim, tor);
  const server = new StatusServer({
    listen: plan.listen,
    tor,
    shim: () => running.shim,
    pins,
    iceServers: () => running.ice,
    credentialsNote: PASS_THROUGH_NOTE,
    metrics: async () => ({ contentType: metrics.contentType, body: await metrics.metrics() }),
  });
  try {
    await server.start();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const at = formatHostPort(plan.listen.host, plan.listen.port);
    if (plan.kept && code === 'EADDRINUSE') {
      logger.warn(`the status page's port ${at} is taken (another onionturn client?); running without it (--status 127.0.0.1:PORT picks another)`);
      return undefined;
    }
    throw new Error(`cannot serve the status page at ${at}: ${code ?? errorText(error)}`);
  }
  logger.info(`status page: ${server.url} (tor, server, flows, a test call; /metrics for Prometheus)`);
  return server;
}

async function runShim(args: ClientArgs, ctx: CliContext, logger: ReturnType<typeof createLogger>, plan: ShimPlan, running: RunningShim): Promise<void> {
  const { listen, servers, socks, tls, localAuth } = plan;
  const shim = new Shim({
    ...(localAuth ? { localAuth, datagramCredentials: localAuth.source } : {}),
    ...(plan.datagrams.socksListen ? { socksListen: plan.datagrams.socksListen } : {}),
    forwards: plan.datagrams.forwards,
    listen,
    allowRemote: args.allowRemote,
    servers,
    serverChoice: args.serverChoice,
    ...(args.readyStream ? { readyStream: DEFAULT_READY_STREAM } : {}),
    socks,
    isolation: args.isolation,
    logger,
    tls,
    detail: args.logSensitive,
    newFlowRate: { perSecond: args.newFlowsPerSecond },
    maxQueueDelayMs: args.maxQueueDelayMs,
    delayFeedback: args.delayFeedback,
  });
  if (plan.stop.aborted) return;
  const addr = await shim.start();
  const local = localAuth ? { username: localAuth.local.username, password: localAuth.local.password } : undefined;
  running.shim = shim;
  running.ice = local ? iceServers(addr.host, addr.port, local) : undefined;
  if (plan.localPasswordNote !== undefined) logger.info(plan.localPasswordNote);
  ctx.out(`${JSON.stringify({ iceServers: iceServers(addr.host, addr.port, local) }, null, 2)}\n`);
  logger.info(`paste the iceServers above into the app; TURN at ${formatHostPort(addr.host, addr.port)}`);
  if (!plan.stop.aborted) await new Promise((resolve) => plan.stop.addEventListener('abort', resolve, { once: true }));
  await shim.stop();
  running.shim = undefined;
  // The counters (no addresses or names in them): what the run did, for the user and for tests.
  logger.info('stopped', { stats: { ...shim.stats } });
}
