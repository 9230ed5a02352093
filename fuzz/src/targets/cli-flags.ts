// The command line as an operator or a user types it: the server's flags and config values as a
// whole (serverConfig, after yargs' defaults), and the smaller parsers both commands use: HOST:PORT,
// the shim's --server, --listen, --forward, --default-socks and --status, the probe's target, the
// udp-gateway's --listen and --to, --relay-ports, --pin and the YAML/JSON config file. Checks: no
// exception but the CLI's UsageError (one line: main prints it and exits 2) escapes; a parsed value
// formatted again parses to the same value; cost linear in size (the engine's budget).
import { isIP } from 'node:net';
import {
  UsageError,
  oneLine as printedLine,
  defaultServerArgs,
  formatTarget,
  parseConfigText,
  parseGatewayListen,
  parseGatewayTarget,
  parseListen as parseListenAddress,
  parseListenSpecs,
  parsePortRange,
  parseProbeTarget,
  serverConfig,
  socksCandidates,
  statusPlanOf,
  type ServerArgs,
} from '@onionturn/cli';
import { formatHostPort, parseForward, parseHostPort, parseListen as parseShimListen, parsePin, parseUpstream } from '@onionturn/client';
import { havoc } from '../mutate.js';
import type { Rng } from '../rng.js';
import { check, type Target } from '../target.js';

/** What the CLI prints for an error (main: `onionturn: ${oneLine(message)}`): one printable line, saying something. */
function printable(message: string): void {
  const line = printedLine(message);
  // eslint-disable-next-line no-control-regex
  check(line.length > 0 && !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(line), `not one printable line: ${JSON.stringify(line.slice(0, 200))}`);
}

/** A UsageError is the CLI's answer to bad input; anything else escapes. */
function usage<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    printable(e.message);
    return undefined;
  }
}

/** A parser's reason, which the CLI prints inside a UsageError. */
const oneLine = printable;

const same = (a: unknown, b: unknown, what: string): void =>
  check(JSON.stringify(a) === JSON.stringify(b), `${what}: ${JSON.stringify(a)} became ${JSON.stringify(b)}`);

// ---- the server's flags as a whole ----

/** Keys the input may set (config-file spelling); files (secret, cert, key) are left out: no I/O. */
const LIST_KEYS = new Set(['listen', 'user', 'peerPolicy', 'allowPeer', 'relayIp', 'externalIp']);
const SCALAR_KEYS = new Set([
  'realm',
  'relayPorts',
  'metrics',
  'channelRange',
  'credentialsListen',
  'maxTtl',
  'maxAllocations',
  'maxAllocationsPerUser',
  'maxPermissions',
  'maxChannels',
  'maxPeers',
  'newPeersPerSecond',
  'unansweredSends',
  'unansweredSendsTotal',
  'bandwidth',
  'totalBandwidth',
  'destinationBandwidth',
  'destinationPacketRate',
  'maxDestinations',
  'defaultLifetime',
  'maxLifetime',
  'nonceLifetime',
  'portQuarantine',
]);
const BOOL_KEYS = new Set(['torCircuitId', 'allowLoopbackPeers', 'strictExpiry']);

/** yargs' defaults, read once (building the parser costs milliseconds). */
let defaults: Record<string, unknown> | undefined;

/** Input: lines `key=value`; a list key repeated is a repeated flag. */
function serverArgsOf(text: string): ServerArgs {
  defaults ??= { ...defaultServerArgs() };
  const args: Record<string, unknown> = { ...defaults, user: ['alice:secret'] };
  const lists = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (LIST_KEYS.has(key)) lists.set(key, [...(lists.get(key) ?? []), value]);
    else if (SCALAR_KEYS.has(key)) args[key] = value;
    else if (BOOL_KEYS.has(key)) args[key] = value === 'true';
  }
  for (const [k, v] of lists) args[k] = v;
  return args as unknown as ServerArgs;
}

const SERVER_SEEDS = [
  'listen=tcp://127.0.0.1:3478',
  'listen=tcp://[::1]:3478\nlisten=udp://127.0.0.1:3478\nrelayPorts=40000-40100',
  'listen=tcp://0.0.0.0:3478\nrelayIp=203.0.113.7\nexternalIp=198.51.100.1',
  'listen=tcp://10.0.0.1:3478\npeerPolicy=reject *:25\npeerPolicy=accept *:*\nallowPeer=10.1.0.0/16:3478-3479',
  'listen=tcp://127.0.0.1:3478\ntorCircuitId=true\nmetrics=127.0.0.1:9100\ncredentialsListen=[::1]:8088',
  'listen=tls://127.0.0.1:5349',
  'listen=127.0.0.1:3478',
  'listen=tcp://127.0.0.1:3478\nmaxAllocations=0\nbandwidth=-1\ndefaultLifetime=600\nmaxLifetime=300',
  'listen=tcp://127.0.0.1:3478\nchannelRange=rfc8656\nuser=bob:pw\nuser=carol\nrelayPorts=1-65535\nportQuarantine=0',
  'listen=tcp://127.0.0.1:3478\nrelayPorts= 50000-50000 \nnonceLifetime=1e3\nmaxTtl=0x10',
];

export const serverFlags: Target = {
  name: 'server-flags',
  maxSize: 1024,
  budgetUs: (n) => 100_000 + 100 * n,
  seeds: () => SERVER_SEEDS.map((s) => Buffer.from(s, 'latin1')),
  mutate: (input, rng, corpus) => havoc(input, rng, corpus, 1024),
  run(input) {
    const warnings: string[] = [];
    const config = usage(() => serverConfig(serverArgsOf(input.toString('latin1')), (m) => warnings.push(m)));
    for (const w of warnings) oneLine(w);
    if (config === undefined) return 'usage';
    check(config.listen.length > 0, 'no listener');
    // Each listener, relay port range and metrics address, formatted again, parses to itself.
    const specs = config.listen.map((l) => `${l.protocol}://${formatHostPort(l.host, l.port)}`);
    same(
      parseListenSpecs(specs).map((l) => [l.protocol, l.host, l.port]),
      config.listen.map((l) => [l.protocol, l.host, l.port]),
      'listeners',
    );
    check(config.relayPorts !== undefined, 'no relay ports');
    const { min, max } = config.relayPorts;
    check(Number.isInteger(min) && Number.isInteger(max) && min >= 1 && max <= 65535 && min <= max, `relay ports ${min}-${max}`);
    same(parsePortRange('relay-ports', `${min}-${max}`), config.relayPorts, 'relay ports');
    if (config.metrics) same(parseListenAddress(formatHostPort(config.metrics.host, config.metrics.port)), config.metrics, 'metrics address');
    for (const ip of [...(config.relayIps ?? []), ...(config.externalIps ?? [])]) check(isIP(ip) !== 0, `relay/external IP ${ip}`);
    const lt = config.lifetimes;
    check(
      lt?.allocationMaxSec !== undefined && lt.allocationDefaultSec !== undefined && lt.allocationMaxSec >= lt.allocationDefaultSec,
      'max lifetime under the default',
    );
    return `ok:${config.listen.map((l) => l.protocol).join('+')}:${config.peerPolicy?.length ?? 0}:${config.allowedPeers?.length ?? 0}:${warnings.length}`;
  },
};

// ---- the smaller parsers ----

const PARSERS = [
  'host-port',
  'shim-server',
  'shim-listen',
  'forward',
  'default-socks',
  'status',
  'probe',
  'gateway',
  'relay-ports',
  'pin',
  'config-yaml',
  'config-json',
  'listen-spec',
] as const;

/** The parsers that throw: a UsageError is an answer; the probe's own Error is its usage line (exit 1). */
function run(kind: (typeof PARSERS)[number], text: string, flag: boolean): string {
  switch (kind) {
    case 'host-port': {
      const r = parseHostPort(text, flag);
      if (!r.ok) return (oneLine(r.reason), 'bad');
      const again = parseHostPort(formatHostPort(r.value.host, r.value.port), flag);
      check(again.ok, `formatted ${formatHostPort(r.value.host, r.value.port)} does not parse`);
      same(again.value, r.value, 'host:port');
      check(r.value.port >= (flag ? 0 : 1) && r.value.port <= 65535, `port ${r.value.port}`);
      return `ok:${isIP(r.value.host)}`;
    }
    case 'shim-server': {
      const r = parseUpstream(text);
      if (!r.ok) return (oneLine(r.reason), 'bad');
      const { transport, host, port } = r.value;
      const again = parseUpstream(`${transport}://${formatHostPort(host, port)}`);
      check(again.ok, `formatted ${transport}://${formatHostPort(host, port)} does not parse`);
      same([again.value.transport, again.value.host, again.value.port], [transport, host, port], 'server');
      check(Buffer.byteLength(host) <= 255 && !host.includes('%'), `a host SOCKS cannot carry: ${host}`);
      return `ok:${transport}`;
    }
    case 'shim-listen': {
      const r = parseShimListen(text, flag);
      if (!r.ok) return (oneLine(r.reason), 'bad');
      check(isIP(r.value.host) !== 0, `listen on a name: ${r.value.host}`);
      same(parseShimListen(formatHostPort(r.value.host, r.value.port), flag), r, 'listen');
      return `ok:${isIP(r.value.host)}`;
    }
    case 'forward': {
      const r = parseForward(text);
      if (!r.ok) return (oneLine(r.reason), 'bad');
      const { listen, target } = r.value;
      const formatted = `udp://${formatHostPort(listen.host, listen.port)}=${formatHostPort(target.address.host, target.port)}`;
      const again = parseForward(formatted);
      check(again.ok, `formatted ${formatted} does not parse`);
      same([again.value.listen, again.value.target], [listen, target], 'forward');
      return `ok:${target.address.kind}`;
    }
    case 'default-socks': {
      const list = usage(() => socksCandidates(text));
      if (list === undefined) return 'bad';
      same(socksCandidates(list.map((c) => formatHostPort(c.host, c.port)).join(',')), list, 'default socks');
      return `ok:${list.length}`;
    }
    case 'status': {
      const plan = usage(() => statusPlanOf(text));
      if (plan === undefined) return 'bad';
      check(plan.listen.host.startsWith('127.') || plan.listen.host === '::1' || /^::ffff:127\./i.test(plan.listen.host), `status on ${plan.listen.host}`);
      same(statusPlanOf(formatHostPort(plan.listen.host, plan.listen.port)), plan, 'status');
      return 'ok';
    }
    case 'probe': {
      let t: ReturnType<typeof parseProbeTarget>;
      try {
        t = parseProbeTarget(text);
      } catch (e) {
        check(e instanceof Error && e.message.startsWith('cannot parse probe target '), `probe: ${String(e)}`);
        oneLine((e as Error).message);
        return 'bad';
      }
      same(parseProbeTarget(formatTarget(t)), t, 'probe target');
      return `ok:${t.transport}`;
    }
    case 'gateway': {
      const l = parseGatewayListen(text, flag);
      const t = parseGatewayTarget(text);
      for (const r of [l, t]) if (!r.ok) oneLine(r.reason);
      if (l.ok) same(parseGatewayListen(`tcp://${formatHostPort(l.value.host, l.value.port)}`, flag), l, 'gateway listen');
      if (t.ok) same(parseGatewayTarget(`udp://${formatHostPort(t.value.host, t.value.port)}`), t, 'gateway target');
      return `${l.ok}:${t.ok}`;
    }
    case 'relay-ports': {
      const r = usage(() => parsePortRange('relay-ports', text));
      if (r === undefined) return 'bad';
      check(r.min >= 1 && r.max <= 65535 && r.min <= r.max, `range ${r.min}-${r.max}`);
      same(parsePortRange('relay-ports', `${r.min}-${r.max}`), r, 'range');
      return 'ok';
    }
    case 'pin': {
      const r = parsePin(text);
      if (!r.ok) return (oneLine(r.reason), 'bad');
      check(r.value.length === 32, `a pin of ${r.value.length} bytes`);
      same(parsePin(`sha256/${r.value.toString('base64')}`), r, 'pin');
      return 'ok';
    }
    case 'config-yaml':
    case 'config-json': {
      // The yaml library's warnings go to process warnings (several lines each) unless the parser stops them.
      const warned: string[] = [];
      const emitWarning = process.emitWarning;
      process.emitWarning = ((w: string | Error) => void warned.push(String(w))) as typeof process.emitWarning;
      let c: Record<string, unknown> | undefined;
      try {
        c = usage(() => parseConfigText(text, kind === 'config-yaml' ? 'fuzz.yaml' : 'fuzz.json'));
      } finally {
        process.emitWarning = emitWarning;
      }
      check(warned.length === 0, `a process warning: ${warned[0]?.slice(0, 200)}`);
      if (c === undefined) return 'bad';
      check(typeof c === 'object' && c !== null && !Array.isArray(c), 'a config that is not a mapping');
      return `ok:${Object.keys(c).length}`;
    }
    case 'listen-spec': {
      const specs = usage(() => parseListenSpecs(text.split(',')));
      if (specs === undefined) return 'bad';
      same(parseListenSpecs(specs.map((l) => `${l.protocol}://${formatHostPort(l.host, l.port)}`)), specs, 'listen specs');
      return `ok:${specs.length}`;
    }
  }
}

const PARSER_SEEDS: [number, string][] = [
  [0, '127.0.0.1:9050'],
  [0, '[::1]:0'],
  [0, 'example.onion:443'],
  [0, '[fe80::1%eth0]:80'],
  [1, 'tcp://203.0.113.7:3478'],
  [1, 'tls://turn.example.org:5349'],
  [1, 'abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz2345.onion:3478'],
  [2, '127.0.0.1:3478'],
  [2, '[::1]:0'],
  [3, 'udp://127.0.0.1:5353=203.0.113.7:53'],
  [3, 'udp://[::1]:5000=example.onion:9000'],
  [4, '127.0.0.1:9050,127.0.0.1:9150'],
  [4, ' , '],
  [5, '127.0.0.1:8080'],
  [5, '[::ffff:127.0.0.1]:0'],
  [6, 'turns:turn.example.org:443?transport=tcp'],
  [6, 'tcp://0.0.0.0:3478'],
  [6, '[::]'],
  [7, 'tcp://127.0.0.1:5300'],
  [7, 'udp://127.0.0.1:53'],
  [8, '49152-65535'],
  [8, ' 1-1'],
  [9, 'sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='],
  [10, 'listen:\n  - tcp://127.0.0.1:3478\nrealm: x\nmax-allocations: 10\n'],
  [10, 'a: &x 1\nb: *x\n'],
  [10, '- 1\n'],
  [11, '{"listen":["tcp://127.0.0.1:3478"],"secretFile":"/etc/x"}'],
  [11, '[1,2]'],
  [12, 'tcp://127.0.0.1:3478,udp://[::1]:3478,tls://0.0.0.0:5349'],
];

/** Input: byte 0 picks the parser (low 4 bits) and a flag (bit 7: allow port 0 / remote / public); the rest is the text. */
export const cliParsers: Target = {
  name: 'cli-parsers',
  maxSize: 1024,
  budgetUs: (n) => 100_000 + 100 * n,
  seeds: () => PARSER_SEEDS.map(([k, s]) => Buffer.concat([Buffer.from([k]), Buffer.from(s, 'utf8')])),
  mutate(input: Buffer, rng: Rng, corpus: readonly Buffer[]): Buffer {
    const out = havoc(input, rng, corpus, 1024);
    // Now and then the same text through another parser.
    if (out.length > 0 && rng.chance(0.1)) out[0] = rng.below(PARSERS.length) | (rng.chance(0.5) ? 0x80 : 0);
    return out;
  },
  run(input) {
    if (input.length === 0) return 'empty';
    const kind = PARSERS[(input[0] as number) & 0x0f];
    if (kind === undefined) return 'none';
    const text = input.subarray(1).toString('utf8');
    return `${kind}:${run(kind, text, ((input[0] as number) & 0x80) !== 0)}`;
  },
};
