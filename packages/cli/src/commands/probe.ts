// `onionturn probe [target]`: one real STUN Binding request over TCP (or TLS) to a TURN server,
// optionally through a SOCKS5 proxy such as Tor (for .onion targets). Exit 0 when the server
// answers with a Binding success response carrying XOR-MAPPED-ADDRESS, 1 otherwise; one line of
// output either way. The Docker image's HEALTHCHECK runs it against ONIONTURN_LISTEN.
import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { CommandModule } from 'yargs';
import { socksConnect } from '@onionturn/client';
import { parseHostPort, type HostPort } from '@onionturn/io';
import {
  AttributeType,
  FrameKind,
  MessageBuilder,
  MessageClass,
  Method,
  StreamFramer,
  decodeMessage,
  readAddressAttribute,
  readAttribute,
  verifyFingerprint,
  WireKind,
  wireKindOf,
  type StunMessage,
} from '@onionturn/protocol';

export interface ProbeTarget {
  readonly transport: 'tcp' | 'tls';
  readonly host: string;
  readonly port: number;
}

export interface ProbeOptions {
  /** Whole probe deadline (connect + answer). Default 5000 ms. */
  readonly timeoutMs?: number;
  /** SOCKS5 proxy (e.g. Tor's SocksPort) to reach the target through; hostnames go to the proxy. */
  readonly socks?: { readonly host: string; readonly port: number };
  /** TLS: skip certificate verification (self-signed or pinned certificates). */
  readonly insecure?: boolean;
  /**
   * tcp://: the listener reads a PROXY line first (a server with --tor-circuit-id, behind tor's
   * HiddenServiceExportCircuitID haproxy): send "PROXY UNKNOWN", which names no client, so the
   * server keys the probe on its real source address.
   */
  readonly proxyHeader?: boolean;
}

/** A PROXY v1 line that names no source (the probe is no client behind tor). */
const PROXY_UNKNOWN = Buffer.from('PROXY UNKNOWN\r\n', 'latin1');

export interface ProbeSuccess {
  readonly ok: true;
  readonly ms: number;
  /** XOR-MAPPED-ADDRESS: the probe's address as the server saw it. */
  readonly mapped: string;
}

export interface ProbeFailure {
  readonly ok: false;
  readonly ms: number;
  readonly reason: string;
}

export type ProbeResult = ProbeSuccess | ProbeFailure;

const DEFAULT_PORT = 3478;

/**
 * Parses `tcp://HOST:PORT`, `tls://HOST:PORT`, `turn(s):HOST:PORT?...`, `HOST:PORT`, `[V6]:PORT`, or
 * `HOST` (port 3478). The scheme and query are taken off here; HOST:PORT is io's one parser.
 */
export function parseProbeTarget(text: string): ProbeTarget {
  const m = /^(?:(tcp|tls|turn|turns):(?:\/\/)?)?([^/?]+)\/?(?:\?.*)?$/i.exec(text.trim());
  if (!m) throw new Error(`cannot parse probe target '${text}': use tcp://HOST:PORT or tls://HOST:PORT`);
  const scheme = (m[1] ?? 'tcp').toLowerCase();
  const transport = scheme === 'tls' || scheme === 'turns' ? 'tls' : 'tcp';
  const hostPort = m[2] as string;
  const hasPort = /:\d+$/.test(hostPort) && (hostPort.startsWith('[') || hostPort.indexOf(':') === hostPort.lastIndexOf(':'));
  const r = parseHostPort(hasPort ? hostPort : `${hostPort}:${DEFAULT_PORT}`);
  if (!r.ok) throw new Error(`cannot parse probe target '${text}': ${r.reason}`);
  let { host } = r.value;
  const { port } = r.value;
  // A server listening on the wildcard address is probed on loopback.
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return { transport, host, port };
}

/**
 * The probe target for a server configured with --listen (ONIONTURN_LISTEN): the first tcp:// or
 * tls:// listener in a space- or comma-separated list.
 */
export function targetFromListen(listen: string | readonly string[]): ProbeTarget | undefined {
  const list = (typeof listen === 'string' ? [listen] : listen).flatMap((v) => String(v).split(/[\s,]+/)).filter((v) => v.length > 0);
  for (const entry of list) {
    if (/^(tcp|tls):\/\//i.test(entry)) return parseProbeTarget(entry);
  }
  const bare = list.find((entry) => !entry.includes('://'));
  return bare === undefined ? undefined : parseProbeTarget(bare);
}

export function formatTarget(t: ProbeTarget): string {
  return `${t.transport}://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
}

async function open(target: ProbeTarget, options: ProbeOptions, timeoutMs: number): Promise<Socket> {
  let raw: Socket;
  if (options.socks) {
    // The shim's own SOCKS5 client: one stack for both (names go to the proxy unresolved).
    const r = await socksConnect({ proxy: options.socks, target: { host: target.host, port: target.port }, timeoutMs });
    if (!r.ok) throw new Error(r.error.reason);
    raw = r.socket;
    if (r.head.length > 0) raw.unshift(r.head);
    // socksConnect hands the stream over paused (the shim attaches its reader first); nothing
    // comes before our request, so reading can start now.
    raw.resume();
  } else {
    raw = await new Promise<Socket>((resolve, reject) => {
      const s = tcpConnect({ host: target.host, port: target.port });
      s.once('connect', () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
  }
  if (target.transport === 'tcp') return raw;
  return new Promise<Socket>((resolve, reject) => {
    const servername = isIP(target.host) === 0 ? target.host : undefined;
    const s = tlsConnect({ socket: raw, rejectUnauthorized: options.insecure !== true, ...(servername ? { servername } : {}) });
    s.once('secureConnect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

function describeAnswer(msg: StunMessage, transactionId: Buffer): string | { mapped: string } {
  if (msg.method !== Method.Binding) return `answer is not a Binding response (method 0x${msg.method.toString(16)})`;
  if (!msg.transactionId.equals(transactionId)) return 'answer has another transaction id';
  if (msg.fingerprintOffset >= 0 && verifyFingerprint(msg) !== 'ok') return 'answer has a bad FINGERPRINT';
  if (msg.messageClass === MessageClass.ErrorResponse) {
    const err = readAttribute(msg, AttributeType.ErrorCode);
    return err?.ok && err.value.kind === 'error-code' ? `server answered error ${err.value.code} ${err.value.reason}` : 'server answered an error response';
  }
  if (msg.messageClass !== MessageClass.SuccessResponse) return 'answer is neither a success nor an error response';
  const mapped = readAddressAttribute(msg, AttributeType.XorMappedAddress);
  if (!mapped) return 'success response without XOR-MAPPED-ADDRESS';
  const host = mapped.address.includes(':') ? `[${mapped.address}]` : mapped.address;
  return { mapped: `${host}:${mapped.port}` };
}

/** Sends one STUN Binding request to target and waits for its answer. Never throws. */
export async function probe(target: ProbeTarget, options: ProbeOptions = {}): Promise<ProbeResult> {
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? 5000;
  const elapsed = (): number => Date.now() - started;
  let socket: Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<ProbeFailure>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, ms: elapsed(), reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
  });
  const attempt = async (): Promise<ProbeResult> => {
    try {
      socket = await open(target, options, timeoutMs);
    } catch (err) {
      return { ok: false, ms: elapsed(), reason: `cannot connect: ${describeError(err)}` };
    }
    const s = socket;
    const builder = new MessageBuilder(Method.Binding, MessageClass.Request);
    const transactionId = Buffer.from(builder.header.subarray(8, 20));
    return new Promise<ProbeResult>((resolve) => {
      let first = true;
      const framer = new StreamFramer((frame, kind) => {
        if (kind !== FrameKind.Stun) return resolve({ ok: false, ms: elapsed(), reason: 'answer is ChannelData, not STUN' });
        const decoded = decodeMessage(frame);
        if (!decoded.ok) return resolve({ ok: false, ms: elapsed(), reason: `undecodable answer: ${decoded.error.reason}` });
        const answer = describeAnswer(decoded.value, transactionId);
        resolve(typeof answer === 'string' ? { ok: false, ms: elapsed(), reason: answer } : { ok: true, ms: elapsed(), mapped: answer.mapped });
      });
      s.on('data', (chunk: Buffer) => {
        // A STUN answer starts with two zero bits; anything else (HTTP, TLS, ...) is not a TURN server.
        if (first && chunk.length > 0 && wireKindOf(chunk[0] as number) !== WireKind.Stun) {
          return resolve({
            ok: false,
            ms: elapsed(),
            reason: `not a STUN stream: answer starts with ${JSON.stringify(chunk.subarray(0, 8).toString('latin1'))}`,
          });
        }
        first = false;
        const err = framer.push(chunk);
        if (err) resolve({ ok: false, ms: elapsed(), reason: `not a STUN stream: ${err.reason}` });
      });
      s.once('error', (err) => resolve({ ok: false, ms: elapsed(), reason: describeError(err) }));
      s.once('close', () => resolve({ ok: false, ms: elapsed(), reason: 'connection closed before an answer' }));
      if (options.proxyHeader === true && target.transport === 'tcp') s.write(PROXY_UNKNOWN);
      s.write(builder.build({ fingerprint: true }));
    });
  };
  try {
    return await Promise.race([attempt(), deadline]);
  } finally {
    clearTimeout(timer);
    socket?.destroy();
  }
}

/** A probe is run by hand to diagnose: the code and the whole message (targets are the user's own). */
function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
  }
  return String(err);
}

function parseSocks(text: string): HostPort {
  const r = parseHostPort(text.trim());
  if (!r.ok) throw new Error(`--socks: ${r.reason}, e.g. 127.0.0.1:9050`);
  return r.value;
}

export interface ProbeIo {
  /** Writes to stdout; adds no newline. */
  readonly out: (text: string) => void;
}

interface ProbeArgs {
  readonly target?: string;
  readonly listen?: string | string[];
  readonly socks?: string;
  readonly timeout: number;
  readonly insecure: boolean;
  readonly torCircuitId: boolean;
}

/** The yargs command. Failures are thrown as Errors (main prints one line, exit 1). */
export function probeCommand(io: ProbeIo): CommandModule {
  return {
    command: 'probe [target]',
    describe: 'send one STUN Binding request over TCP/TLS; exit 0 if the server answers with XOR-MAPPED-ADDRESS',
    builder: (y) =>
      y
        .positional('target', { type: 'string', describe: 'tcp://HOST:PORT or tls://HOST:PORT (default: the first tcp:// or tls:// of --listen)' })
        .option('listen', {
          type: 'string',
          array: true,
          requiresArg: true,
          global: false,
          describe: "the server's listeners [env ONIONTURN_LISTEN], used when no target is given",
        })
        .option('socks', {
          type: 'string',
          requiresArg: true,
          global: false,
          describe: 'reach the target through this SOCKS5 proxy, e.g. Tor at 127.0.0.1:9050 (needed for .onion)',
        })
        .option('timeout', { type: 'number', default: 5000, requiresArg: true, global: false, describe: 'milliseconds to wait for the answer' })
        .option('insecure', { type: 'boolean', default: false, global: false, describe: 'tls://: do not verify the certificate' })
        .option('tor-circuit-id', {
          type: 'boolean',
          default: false,
          global: false,
          describe:
            'tcp://: the server runs with --tor-circuit-id [env ONIONTURN_TOR_CIRCUIT_ID, as the server]: send a PROXY line ("PROXY UNKNOWN") before the request, as tor would',
        })
        .example('$0 probe tcp://127.0.0.1:3478', 'check a local server')
        .example('$0 probe tcp://abc...xyz.onion:3478 --socks 127.0.0.1:9050', 'check an onion service through Tor'),
    handler: async (argv) => {
      const args = argv as unknown as ProbeArgs;
      const target = args.target !== undefined ? parseProbeTarget(args.target) : args.listen !== undefined ? targetFromListen(args.listen) : undefined;
      if (!target) throw new Error('probe: no target: give tcp://HOST:PORT (or set ONIONTURN_LISTEN)');
      if (!Number.isFinite(args.timeout) || args.timeout <= 0)
        throw new Error(`--timeout must be a positive number of milliseconds, got '${String(args.timeout)}'`);
      const socks = args.socks !== undefined ? parseSocks(args.socks) : undefined;
      const result = await probe(target, { timeoutMs: args.timeout, insecure: args.insecure, proxyHeader: args.torCircuitId, ...(socks ? { socks } : {}) });
      const via = socks ? ` via socks5://${socks.host}:${socks.port}` : '';
      if (!result.ok) throw new Error(`probe ${formatTarget(target)}${via} failed after ${result.ms} ms: ${result.reason}`);
      io.out(`ok ${formatTarget(target)}${via}: Binding success in ${result.ms} ms, XOR-MAPPED-ADDRESS ${result.mapped}\n`);
    },
  };
}
