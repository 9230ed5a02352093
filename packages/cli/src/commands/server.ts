// `onionturn server`: the exit-side TURN server. Flags, ONIONTURN_* env and --config JSON map onto
// TurnServerConfig; every bad value is a UsageError (one line, exit 2). SIGHUP re-reads secret
// files, users and the peer policy (allocations stay); SIGTERM/SIGINT stop and exit 0.
import yargs, { type Argv, type CommandModule } from 'yargs';
import {
  DEFAULT_LIFETIMES,
  DEFAULT_LIMITS,
  TurnServer,
  chainLookups,
  createLogger,
  parseAllowPeer,
  parsePolicyRule,
  parseUserSpec,
  proxySource,
  readProxyHeader,
  restSecrets,
  staticUsers,
  type CredentialLookup,
  type Logger,
  type Limits,
  type ListenSpec,
  type PolicyRule,
  type TurnServerConfig,
} from '@onionturn/server';
import { createServer, type IncomingMessage } from 'node:http';
import { createServer as createNetServer, isIP, type Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { createCredentialHandler } from '@onionturn/credentials/http';
import type { CliContext } from '../cli-context.js';
import { ENV_PREFIX, givenOnCommandLine, isLoopback, loadConfigFile, parseListen, readSecretFile, wholeNumber } from '../config.js';
import { UsageError } from '../exit-codes.js';
import { DEFAULT_MAX_QUEUE_DELAY_MS, errorText, listenOn } from '@onionturn/io';
import { startPrimary, workerConfig, workerIdentity, workerStarted, type Primary } from './server-workers.js';

export interface ServerArgs {
  listen: string[];
  realm: string;
  secretFile?: string[];
  maxTtl: number;
  user?: string[];
  strictExpiry: boolean;
  mobility: boolean;
  peerPolicy?: string[];
  allowPeer?: string[];
  allowLoopbackPeers: boolean;
  filtering: 'address-and-port' | 'address';
  channelRange: 'rfc5766' | 'rfc8656';
  relayIp?: string[];
  externalIp?: string[];
  relayPorts: string;
  portQuarantine: number;
  cert?: string;
  key?: string;
  metrics?: string;
  logSensitive: boolean;
  logLevel: string;
  software?: string;
  maxAllocations: number;
  maxAllocationsPerUser: number;
  maxPermissions: number;
  maxChannels: number;
  maxPeers: number;
  newPeersPerSecond: number;
  unansweredSends: number;
  unansweredSendsTotal: number;
  bandwidth: number;
  totalBandwidth: number;
  destinationBandwidth: number;
  destinationPacketRate: number;
  maxDestinations: number;
  defaultLifetime: number;
  maxLifetime: number;
  nonceLifetime: number;
  maxQueueDelayMs: number;
  delayFeedback: boolean;
  config?: string;
  credentialsListen?: string;
  credentialsTtl?: number;
  credentialsUri?: string[];
  credentialsKeyFile?: string;
  torCircuitId: boolean;
  /** Undefined: the default (defaultWorkers). */
  workers?: number;
  /** The command line as typed (set by the handler), for warnings about secrets in `ps`. */
  rawArgv?: readonly string[];
}

function list(value: string | readonly string[] | undefined, separator: RegExp = /[\s,]+/): string[] {
  if (value === undefined) return [];
  // Env vars carry lists space- or comma-separated; flags and JSON arrays come as arrays.
  const items = typeof value === 'string' ? [value] : [...value];
  return items
    .flatMap((v) => String(v).split(separator))
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/**
 * tcp://HOST:PORT, udp://..., tls://... A bare HOST:PORT is refused: it used to open UDP too, and
 * a UDP listener answers spoofed sources (reflection), so that takes a udp:// of its own.
 */
export function parseListenSpecs(values: readonly string[]): ListenSpec[] {
  const out: ListenSpec[] = [];
  for (const v of values) {
    const m = /^(tcp|udp|tls):\/\/(.+)$/.exec(v);
    if (!m) throw new UsageError(`--listen '${v}': say which transport: tcp://${v} (add udp://${v} for UDP clients too)`);
    const { host, port } = parseListen(m[2] as string);
    if (isIP(host) === 0) throw new UsageError(`--listen '${v}': the host must be an IP address`);
    out.push({ protocol: m[1] as ListenSpec['protocol'], host, port });
  }
  if (out.length === 0) throw new UsageError('give at least one --listen tcp://HOST:PORT (or udp://, tls://)');
  return out;
}

export function parsePolicy(values: readonly string[]): PolicyRule[] {
  return values.map((text) => {
    const r = parsePolicyRule(text);
    if (!r.ok) throw new UsageError(r.reason);
    return r.rule;
  });
}

export function parseAllowPeers(values: readonly string[]): PolicyRule[] {
  return values.map((text) => {
    const r = parseAllowPeer(text);
    if (!r.ok) throw new UsageError(`${r.reason} (expected CIDR[:PORTS], e.g. 10.1.0.0/16:3478-3479 or [fd00::]/8)`);
    return r.rule;
  });
}

/** MIN-MAX within 1-65535 (--relay-ports). */
export function parsePortRange(name: string, text: string): { min: number; max: number } {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  const min = Number(m?.[1]);
  const max = Number(m?.[2]);
  if (!m || min < 1 || max > 65535 || min > max) throw new UsageError(`--${name} must be MIN-MAX within 1-65535, got '${text}'`);
  return { min, max };
}

function ips(name: string, values: readonly string[]): string[] {
  for (const v of values) if (isIP(v) === 0) throw new UsageError(`--${name} '${v}' is not an IP address`);
  return [...values];
}

/** Credentials and policy: what SIGHUP reloads. `newest` receives the newest REST secret. */
function authAndPolicy(
  args: ServerArgs,
  warn: (m: string) => void,
  newest?: (secret: string) => void,
): { lookup: CredentialLookup; policy: PolicyRule[]; allowed: PolicyRule[] } {
  const lookups: CredentialLookup[] = [];
  const users = new Map<string, string>();
  for (const spec of list(args.user)) {
    const u = parseUserSpec(spec);
    if (!u) throw new UsageError(`--user must be NAME:PASSWORD, got '${spec.split(':')[0] ?? ''}:…'`);
    users.set(u.name, u.password);
  }
  if (users.size > 0) lookups.push(staticUsers(users));
  const files = list(args.secretFile);
  if (files.length > 0) {
    const secrets = files.map((f) => readSecretFile(f, ({ path }) => warn(`secret file ${path} is readable by others (chmod 600 ${path})`)));
    lookups.push(restSecrets({ secrets, maxTtl: wholeNumber('max-ttl', args.maxTtl) }));
    if (secrets[0] !== undefined) newest?.(secrets[0]);
  }
  if (lookups.length === 0) throw new UsageError('no credentials: give --secret-file FILE (REST secrets) and/or --user NAME:PASSWORD');
  return { lookup: chainLookups(...lookups), policy: parsePolicy(list(args.peerPolicy, /[,\n]/)), allowed: parseAllowPeers(list(args.allowPeer)) };
}

export function serverConfig(args: ServerArgs, warn: (m: string) => void): TurnServerConfig {
  const listen = parseListenSpecs(list(args.listen)).map((l) => (args.torCircuitId && l.protocol === 'tcp' ? { ...l, proxyHeader: true } : l));
  if (args.torCircuitId && !listen.some((l) => l.protocol === 'tcp'))
    throw new UsageError('--tor-circuit-id needs a tcp:// listener (the one tor forwards the onion service to)');
  if (listen.some((l) => l.protocol === 'tls') && (!args.cert || !args.key)) throw new UsageError('tls:// listeners need --cert and --key');
  const { lookup, policy, allowed } = authAndPolicy(args, warn);
  const limits: Limits = {
    allocations: wholeNumber('max-allocations', args.maxAllocations),
    allocationsPerUser: wholeNumber('max-allocations-per-user', args.maxAllocationsPerUser),
    permissionsPerAllocation: wholeNumber('max-permissions', args.maxPermissions),
    channelsPerAllocation: wholeNumber('max-channels', args.maxChannels),
    peersPerAllocation: wholeNumber('max-peers', args.maxPeers),
    newPeersPerSecond: wholeNumber('new-peers-per-second', args.newPeersPerSecond),
    unansweredSends: wholeNumber('unanswered-sends', args.unansweredSends),
    unansweredSendsPerAllocation: wholeNumber('unanswered-sends-total', args.unansweredSendsTotal),
    bandwidthPerAllocation: wholeNumber('bandwidth', args.bandwidth, { min: 0 }),
    bandwidthTotal: wholeNumber('total-bandwidth', args.totalBandwidth, { min: 0 }),
    bandwidthPerDestination: wholeNumber('destination-bandwidth', args.destinationBandwidth, { min: 0 }),
    packetsPerDestination: wholeNumber('destination-packet-rate', args.destinationPacketRate, { min: 0 }),
    destinations: wholeNumber('max-destinations', args.maxDestinations),
  };
  const defaultLifetime = wholeNumber('default-lifetime', args.defaultLifetime);
  const maxLifetime = wholeNumber('max-lifetime', args.maxLifetime);
  if (maxLifetime < defaultLifetime) throw new UsageError('--max-lifetime must be at least --default-lifetime');
  const relayIps = ips('relay-ip', list(args.relayIp));
  const wildcardOnly = listen.every((l) => l.host === '0.0.0.0' || l.host === '::');
  if (relayIps.length === 0 && wildcardOnly) throw new UsageError('listening on a wildcard address needs --relay-ip ADDRESS');
  let metrics: { host: string; port: number } | undefined;
  if (args.metrics !== undefined) {
    metrics = parseListen(args.metrics);
  }
  if (!['rfc5766', 'rfc8656'].includes(args.channelRange)) throw new UsageError(`--channel-range must be rfc5766 or rfc8656`);
  const config: TurnServerConfig = {
    listen,
    realm: args.realm,
    lookup,
    peerPolicy: policy,
    allowedPeers: allowed,
    allowLoopbackPeers: args.allowLoopbackPeers,
    filtering: args.filtering,
    channelRange: args.channelRange,
    relayIps,
    externalIps: ips('external-ip', list(args.externalIp)),
    relayPorts: parsePortRange('relay-ports', args.relayPorts),
    portQuarantineSec: wholeNumber('port-quarantine', args.portQuarantine, { min: 0 }),
    lifetimes: { allocationDefaultSec: defaultLifetime, allocationMaxSec: maxLifetime, nonceSec: wholeNumber('nonce-lifetime', args.nonceLifetime) },
    limits,
    strictExpiry: args.strictExpiry,
    mobility: args.mobility,
    maxQueueDelayMs: wholeNumber('max-queue-delay-ms', args.maxQueueDelayMs, { min: 0, note: '0: no time bound' }),
    delayFeedback: args.delayFeedback,
    logSensitive: args.logSensitive,
    ...(args.cert !== undefined ? { cert: args.cert } : {}),
    ...(args.key !== undefined ? { key: args.key } : {}),
    ...(args.software !== undefined ? { software: args.software } : {}),
    ...(metrics ? { metrics } : {}),
  };
  // Warnings only once the whole configuration is valid: a bad value stays one line (exit 2).
  if (givenOnCommandLine(args.rawArgv ?? [], 'user')) {
    warn(`--user NAME:PASSWORD shows the password to every user via ps; put users in a --config file (mode 600) or ${ENV_PREFIX}_USER`);
  }
  if (metrics && !isLoopback(metrics.host)) {
    warn(
      `--metrics ${args.metrics} is reachable beyond this machine: counts of allocations and traffic are visible to anyone who can connect; bind it to 127.0.0.1 or firewall it`,
    );
  }
  if (args.credentialsListen !== undefined && !isLoopback(parseListen(args.credentialsListen).host)) {
    warn(
      `--credentials-listen ${args.credentialsListen} is reachable beyond this machine: anyone who reaches it gets TURN credentials${args.credentialsKeyFile === undefined ? '; require a key with --credentials-key-file' : ''}`,
    );
  }
  const nat = [...relayIps, ...listen.map((l) => l.host)].find((h) => isPrivateAddress(h));
  if (nat !== undefined && list(args.externalIp).length === 0) {
    warn(
      `relays use the private address ${nat} and no --external-ip is given: behind 1:1 NAT the public address is not known, so peers cannot be told it and it is not denied as an own address; give --external-ip PUBLIC_IP`,
    );
  }
  return config;
}

/** The server's arguments when no flag, variable or config file sets any: yargs' defaults (the fuzzer starts from them). */
export function defaultServerArgs(): ServerArgs {
  return options(yargs()).parseSync([]) as unknown as ServerArgs;
}

function options(y: Argv): Argv {
  const L = DEFAULT_LIMITS;
  return y
    .option('listen', {
      type: 'string',
      array: true,
      requiresArg: true,
      default: ['tcp://127.0.0.1:3478'],
      describe:
        'tcp://HOST:PORT, udp://HOST:PORT or tls://HOST:PORT, IPv6 in brackets: tcp://[::1]:3478 (repeatable; relays of a family bind to its first listener address unless --relay-ip)',
    })
    .option('realm', { type: 'string', requiresArg: true, default: 'onionturn', describe: 'TURN realm' })
    .option('secret-file', { type: 'string', array: true, requiresArg: true, describe: 'REST shared secret file (repeatable, newest first)' })
    .option('max-ttl', { type: 'number', requiresArg: true, default: 86_400, describe: 'refuse REST usernames expiring further ahead (seconds)' })
    .option('user', { type: 'string', array: true, requiresArg: true, describe: 'static user NAME:PASSWORD (repeatable)' })
    .option('strict-expiry', {
      type: 'boolean',
      default: true,
      describe:
        'an allocation lives no longer than its REST credential: Refresh is cut to the time it has left and refused after (--no-strict-expiry: refreshed forever). An allocation keeps its username, so the credential ttl is the longest call',
    })
    .option('mobility', {
      type: 'boolean',
      default: true,
      describe:
        'TURN mobility (RFC 8016): a client that asks gets a ticket with which a new connection (a new Tor circuit) takes its allocation over, relay address kept; the same username is required. --no-mobility: such an Allocate gets 405',
    })
    .option('peer-policy', {
      type: 'string',
      array: true,
      requiresArg: true,
      describe: '"accept|reject ADDR[/BITS]:PORT[-PORT]" after the built-in deny list (repeatable; it cannot reopen private, loopback or metadata ranges)',
    })
    .option('allow-peer', {
      type: 'string',
      array: true,
      requiresArg: true,
      describe: 'CIDR[:PORTS]: reopen a range the built-in deny list closes, e.g. 10.1.0.0/16:3478-3479 (repeatable; logged as a warning)',
    })
    .option('allow-loopback-peers', { type: 'boolean', default: false, describe: 'TESTS ONLY: allow relaying to loopback' })
    .option('filtering', { choices: ['address-and-port', 'address'], default: 'address-and-port', describe: 'which peer datagrams reach the client' })
    .option('channel-range', { choices: ['rfc5766', 'rfc8656'], default: 'rfc5766', describe: 'channel numbers accepted: 0x4000-0x7FFF or 0x4000-0x4FFF' })
    .option('relay-ip', { type: 'string', array: true, requiresArg: true, describe: 'address relay sockets bind to (one per family)' })
    .option('external-ip', { type: 'string', array: true, requiresArg: true, describe: 'address announced for relays (NAT), one per family' })
    .option('relay-ports', { type: 'string', requiresArg: true, default: '49152-65535', describe: 'relay port range MIN-MAX' })
    .option('port-quarantine', { type: 'number', requiresArg: true, default: 150, describe: 'seconds before a released relay port is reused' })
    .option('cert', { type: 'string', requiresArg: true, describe: 'PEM certificate for tls:// listeners' })
    .option('key', { type: 'string', requiresArg: true, describe: 'PEM private key for tls:// listeners' })
    .option('metrics', { type: 'string', requiresArg: true, describe: 'serve Prometheus metrics on HOST:PORT/metrics' })
    .option('log-sensitive', { type: 'boolean', default: false, describe: 'log usernames and addresses (debugging only)' })
    .option('log-level', { choices: ['error', 'warn', 'info', 'debug'], default: 'info', describe: 'JSON log level (stderr)' })
    .option('software', { type: 'string', requiresArg: true, describe: 'send this SOFTWARE attribute (none by default)' })
    .option('max-allocations', { type: 'number', requiresArg: true, default: L.allocations, describe: 'allocations in total' })
    .option('max-allocations-per-user', { type: 'number', requiresArg: true, default: L.allocationsPerUser, describe: 'allocations per username' })
    .option('max-permissions', { type: 'number', requiresArg: true, default: L.permissionsPerAllocation, describe: 'permissions per allocation' })
    .option('max-channels', { type: 'number', requiresArg: true, default: L.channelsPerAllocation, describe: 'channels per allocation' })
    .option('max-peers', { type: 'number', requiresArg: true, default: L.peersPerAllocation, describe: 'peer ip:port pairs per allocation' })
    .option('new-peers-per-second', { type: 'number', requiresArg: true, default: L.newPeersPerSecond, describe: 'new peers per second per allocation' })
    .option('unanswered-sends', {
      type: 'number',
      requiresArg: true,
      default: L.unansweredSends,
      describe: 'datagrams to a peer address (all its ports) before it has answered',
    })
    .option('unanswered-sends-total', {
      type: 'number',
      requiresArg: true,
      default: L.unansweredSendsPerAllocation,
      describe: 'datagrams per allocation to all peers that have not answered',
    })
    .option('bandwidth', { type: 'number', requiresArg: true, default: L.bandwidthPerAllocation, describe: 'bytes/s per allocation (0: unlimited)' })
    .option('total-bandwidth', { type: 'number', requiresArg: true, default: L.bandwidthTotal, describe: 'bytes/s for all allocations (0: unlimited)' })
    .option('destination-bandwidth', {
      type: 'number',
      requiresArg: true,
      default: L.bandwidthPerDestination,
      describe: 'bytes/s to one peer address from all allocations together (0: unlimited)',
    })
    .option('destination-packet-rate', {
      type: 'number',
      requiresArg: true,
      default: L.packetsPerDestination,
      describe: 'datagrams/s to one peer address from all allocations together (0: unlimited)',
    })
    .option('max-destinations', {
      type: 'number',
      requiresArg: true,
      default: L.destinations,
      describe: 'peer addresses whose budgets are tracked at once (more share one budget)',
    })
    .option('default-lifetime', { type: 'number', requiresArg: true, default: DEFAULT_LIFETIMES.allocationDefaultSec, describe: 'allocation lifetime (s)' })
    .option('max-lifetime', { type: 'number', requiresArg: true, default: DEFAULT_LIFETIMES.allocationMaxSec, describe: 'longest allocation lifetime (s)' })
    .option('credentials-listen', {
      type: 'string',
      requiresArg: true,
      describe: 'serve REST credentials (GET /credentials) on HOST:PORT, signed with the newest --secret-file',
    })
    .option('credentials-ttl', { type: 'number', requiresArg: true, describe: 'ttl of served credentials (s); default --max-ttl' })
    .option('credentials-uri', { type: 'string', array: true, requiresArg: true, describe: 'TURN URI returned with served credentials (repeatable)' })
    .option('workers', {
      type: 'number',
      requiresArg: true,
      defaultDescription: 'the number of cores; 1 with only udp:// listeners, or with a tls:// listener and mobility on',
      describe:
        'worker processes (Node cluster): TCP/TLS connections are spread over them, the relay port range and the total quotas are split, one worker owns the UDP listeners (so UDP clients get 1/N of the quotas: use 1 for a mostly-UDP server); 1: one process. A TURN mobility take-over on a plain TCP connection that reaches another worker is handed to the one holding the allocation; over TLS it gets 437',
    })
    .option('tor-circuit-id', {
      type: 'boolean',
      default: false,
      describe:
        "behind an onion service with tor's HiddenServiceExportCircuitID haproxy: tcp:// listeners and --credentials-listen read the PROXY line tor sends and tell clients apart by their circuit (all come from 127.0.0.1)",
    })
    .option('credentials-key-file', {
      type: 'string',
      requiresArg: true,
      describe: 'the credential endpoint requires this key (Authorization: Bearer, X-API-Key or key=)',
    })
    .option('nonce-lifetime', { type: 'number', requiresArg: true, default: DEFAULT_LIFETIMES.nonceSec, describe: 'seconds before 438 Stale Nonce' })
    .option('max-queue-delay-ms', {
      type: 'number',
      requiresArg: true,
      default: DEFAULT_MAX_QUEUE_DELAY_MS,
      describe:
        'relayed datagrams waiting longer than this (ms) towards a TCP/TLS client are dropped, not sent late (video first; control messages, ICE checks, DTLS handshakes and RTCP never); 0: only the 1 MiB byte bound',
    })
    .option('delay-feedback', {
      type: 'boolean',
      default: true,
      describe:
        'the delay extension with onionturn shims (DELAY-FEEDBACK at Allocate): both ends report delay every ~50 ms and cap what is in flight inside Tor, so the backlog waits where --max-queue-delay-ms can drop it; plain TURN clients never see it; needs --max-queue-delay-ms > 0. --no-delay-feedback: never negotiated',
    });
}

export function serverCommand(ctx: CliContext): CommandModule {
  return {
    command: 'server',
    describe: 'run the exit-side TURN server (TURN over TCP/TLS/UDP, relaying UDP to peers)',
    builder: (y) => options(y).example('$0 server --listen tcp://0.0.0.0:3478 --relay-ip 203.0.113.5 --secret-file /etc/onionturn/secret', ''),
    handler: async (argv) => {
      const args = { ...(argv as unknown as ServerArgs), rawArgv: ctx.rawArgv };
      const worker = workerIdentity();
      if (args.workers !== undefined) {
        // Before serverConfig's warnings: a usage error is the one line printed.
        const ports = parsePortRange('relay-ports', args.relayPorts);
        if (wholeNumber('workers', args.workers) > ports.max - ports.min + 1)
          throw new UsageError(
            `--relay-ports ${ports.min}-${ports.max} has fewer ports than --workers ${args.workers} (each worker has its own slice): widen the range or lower --workers`,
          );
      }
      // Warnings once, from the primary; a worker checks the same configuration quietly.
      const base = serverConfig(args, worker ? () => undefined : ctx.warn);
      const relayPorts = base.relayPorts ?? { min: 49152, max: 65535 };
      const portCount = relayPorts.max - relayPorts.min + 1;
      const workers =
        args.workers === undefined ? defaultWorkers(base.listen, availableParallelism(), portCount, args.mobility) : wholeNumber('workers', args.workers);
      if (workers > 1 && !base.listen.some((l) => l.protocol !== 'udp'))
        throw new UsageError('--workers needs a tcp:// or tls:// listener (one worker owns the UDP listeners)');
      const logger = createLogger({ level: args.logLevel, sensitive: args.logSensitive });
      if (workers > 1 && !worker) return runPrimary(args, ctx, base, workers, logger);
      const config = worker ? await workerConfig(base, worker.index, worker.count) : base;
      // The credential endpoint signs with whatever secret is newest, also after SIGHUP.
      const state = { secret: '' };
      authAndPolicy(
        args,
        () => undefined,
        (s) => (state.secret = s),
      );
      // Before the server: its 'server-started' line tells scripts everything listens, this
      // endpoint too. In a cluster the primary serves credentials.
      const endpoint = worker ? undefined : await startCredentialEndpoint(args, () => state.secret, ctx.warn);
      let server: TurnServer;
      try {
        server = await TurnServer.start({ ...config, logger });
      } catch (error) {
        if (endpoint) await endpoint();
        throw new Error(`cannot start: ${errorText(error)}`);
      }
      if (worker) workerStarted(server);
      const onHup = (): void => {
        try {
          // A config file may carry the policy and users: read it again, flags still win.
          const fromFile = args.config ? loadConfigFile(args.config) : {};
          const merged = reloadedArgs(args, fromFile, ctx.rawArgv, process.env);
          const { lookup, policy, allowed } = authAndPolicy(merged, ctx.warn, (s) => (state.secret = s));
          server.reload(lookup, policy, allowed);
        } catch (error) {
          logger.error('reload-failed', { error: (error as Error).message });
        }
      };
      logger.info('stopping', { signal: await untilStopped(onHup) });
      if (endpoint) await endpoint();
      await server.close();
      // A worker's IPC channel to the primary would keep it alive: let go of it.
      if (worker) process.disconnect?.();
    },
  };
}

/** Runs until SIGINT or SIGTERM (the one it resolves with), calling onHup on each SIGHUP meanwhile. */
function untilStopped(onHup: () => void): Promise<NodeJS.Signals> {
  process.on('SIGHUP', onHup);
  return new Promise<NodeJS.Signals>((resolve) => {
    const stop = (s: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.off('SIGHUP', onHup);
      resolve(s);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/**
 * --workers when not given: one per core, as TCP connections spread over them; 1 with only UDP
 * listeners, which one worker would own alone, and 1 with a TLS listener while TURN mobility is on
 * (a take-over over TLS that reaches another worker gets 437: its session cannot leave the process,
 * and a call that survives the loss of its circuit is worth more than a second core); never more
 * than relay ports (each worker takes a slice of the range).
 */
export function defaultWorkers(listen: readonly { readonly protocol: string }[], cores: number, relayPorts: number, mobility = true): number {
  if (!listen.some((l) => l.protocol !== 'udp')) return 1;
  if (mobility && listen.some((l) => l.protocol === 'tls')) return 1;
  return Math.max(1, Math.min(cores, relayPorts));
}

/** --workers N: the primary forks and watches the workers, serves metrics and credentials. */
async function runPrimary(args: ServerArgs, ctx: CliContext, config: TurnServerConfig, workers: number, logger: Logger): Promise<void> {
  const state = { secret: '' };
  authAndPolicy(
    args,
    () => undefined,
    (s) => (state.secret = s),
  );
  // Before the workers, as in one process: 'server-started' means the endpoint listens too.
  const endpoint = await startCredentialEndpoint(args, () => state.secret, ctx.warn);
  let primary: Primary;
  try {
    primary = await startPrimary({ ...config, logger }, workers, logger);
  } catch (error) {
    if (endpoint) await endpoint();
    throw new Error(`cannot start: ${errorText(error)}`);
  }
  const onHup = (): void => {
    try {
      const fromFile = args.config ? loadConfigFile(args.config) : {};
      authAndPolicy(reloadedArgs(args, fromFile, ctx.rawArgv, process.env), ctx.warn, (s) => (state.secret = s));
    } catch (error) {
      logger.error('reload-failed', { error: (error as Error).message });
    }
    primary.reload();
  };
  logger.info('stopping', { signal: await untilStopped(onHup) });
  if (endpoint) await endpoint();
  await primary.stop();
  logger.info('server-stopped', {});
}

/** Behind an onion service: the circuit each credential-endpoint connection came on. */
const circuits = new WeakMap<Socket, string>();

/** Starts the endpoint; resolves to a function that stops it. */
async function startCredentialEndpoint(args: ServerArgs, secret: () => string, warn: (m: string) => void): Promise<(() => Promise<void>) | undefined> {
  if (args.credentialsListen === undefined) return undefined;
  const listen = parseListen(args.credentialsListen);
  const apiKeys =
    args.credentialsKeyFile === undefined
      ? []
      : [readSecretFile(args.credentialsKeyFile, ({ path }) => warn(`key file ${path} is readable by others (chmod 600 ${path})`))];

  if (!secret()) throw new UsageError('--credentials-listen needs --secret-file (the newest secret signs served credentials)');
  const maxTtl = wholeNumber('max-ttl', args.maxTtl);
  const ttl = args.credentialsTtl === undefined ? maxTtl : wholeNumber('credentials-ttl', args.credentialsTtl);
  if (ttl > maxTtl) throw new UsageError('--credentials-ttl must not exceed --max-ttl (the server would refuse its own credentials)');
  let handler;
  try {
    // Rate limited per client address (60/min), and 600/min in total.
    handler = createCredentialHandler({
      secret,
      ttl,
      uris: list(args.credentialsUri),
      apiKeys,
      ...(args.torCircuitId ? { sourceOf: (req: IncomingMessage) => circuits.get(req.socket) ?? req.socket.remoteAddress ?? '' } : {}),
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const http = createServer(handler);
  http.headersTimeout = 10_000;
  http.requestTimeout = 15_000;
  // Behind an onion service: a raw TCP listener reads tor's PROXY line first, then hands the
  // socket to the HTTP server; the per-source limit then counts circuits, not 127.0.0.1.
  const front = args.torCircuitId
    ? createNetServer((sock) =>
        readProxyHeader(sock, 10_000, (header, rest) => {
          if (header === undefined) return;
          circuits.set(sock, proxySource(header, sock.remoteAddress ?? ''));
          if (rest.length > 0) sock.unshift(rest);
          http.emit('connection', sock);
        }),
      )
    : http;
  await listenOn(front, { port: listen.port, host: listen.host }, (e) => warn(`credential endpoint listener error: ${errorText(e)}`)).catch((e: unknown) => {
    throw new Error(`cannot listen on ${args.credentialsListen}: ${errorText(e as Error)}`);
  });
  return async () => {
    http.closeAllConnections();
    await Promise.all([http, front].filter((s, i, all) => all.indexOf(s) === i).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  };
}

/** Options a SIGHUP reads again from the config file. */
const RELOADED = ['peer-policy', 'allow-peer', 'user', 'secret-file'] as const;

/**
 * The arguments after a SIGHUP: the config file's peer policy, users and secret files replace
 * the ones it gave at startup, but flags and ONIONTURN_* variables still win over it, as they did
 * at startup.
 */
export function reloadedArgs<T extends object>(args: T, fromFile: Record<string, unknown>, rawArgv: readonly string[], env: NodeJS.ProcessEnv): T {
  const out = { ...args } as Record<string, unknown>;
  for (const name of RELOADED) {
    const camel = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const value = fromFile[name] ?? fromFile[camel];
    if (value === undefined) continue;
    const flag = rawArgv.some((a) => [name, camel].some((n) => a === `--${n}` || a.startsWith(`--${n}=`)));
    if (flag || env[`${ENV_PREFIX}_${name.toUpperCase().replace(/-/g, '_')}`] !== undefined) continue;
    out[camel] = value;
  }
  return out as T;
}

/** RFC 1918 and CGNAT IPv4, unique-local IPv6: addresses a 1:1 NAT hides. */
function isPrivateAddress(host: string): boolean {
  return /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.)/.test(host) || /^f[cd][0-9a-f]{2}:/i.test(host);
}
