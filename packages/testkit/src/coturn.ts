// Debian coturn as an independent TURN server, client and peer for tests and benchmarks:
// `turnserver` on loopback, `turnutils_uclient` runs, and `turnutils_peer` (a UDP echo peer).
// Everything is started through a ProcessGroup, so tests stop exactly these processes by PID.
import { once } from 'node:events';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetNamespace } from '@onionturn/lab';
import { freePort, portRange } from '@onionturn/lab';
import { waitFor, type ProcessGroup, type Started } from '@onionturn/lab';
import { TOOLS, requireTool } from '@onionturn/lab';
import { canConnect } from '@onionturn/lab';

const HOST = '127.0.0.1';
/** coturn's -v log can be long; keep this much of it for assertions (the ProcessGroup keeps less). */
const LOG_CAP = 8 * 1024 * 1024;

export interface CoturnOptions {
  /** REST shared secrets (`--use-auth-secret --static-auth-secret=...`); coturn accepts any of them. */
  readonly secrets?: readonly string[];
  /** Static long-term users (`--lt-cred-mech --user name:password`), when no secrets are given. */
  readonly users?: Readonly<Record<string, string>>;
  readonly realm?: string;
  /** TCP and UDP listening port (default: a free one). */
  readonly port?: number;
  /** Relay port range (default: 200 ports at a random offset). */
  readonly relayPorts?: { readonly min: number; readonly max: number };
  /** `-v`: coturn then logs each request's result, e.g. `user <U>: ... error 401`. Default true. */
  readonly verbose?: boolean;
  readonly extraArgs?: readonly string[];
  /** TURN over TLS too: PEM certificate and key files; the TLS port is Coturn.tlsPort. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** How long to wait for the TCP port to accept. Default 10 s. */
  readonly startTimeoutMs?: number;
}

export interface Coturn {
  readonly host: string;
  readonly port: number;
  /** The TURN-over-TLS port when started with `tls`. */
  readonly tlsPort?: number;
  readonly realm: string;
  readonly relayPorts: { readonly min: number; readonly max: number };
  readonly process: Started;
  /** Everything coturn logged so far (stdout + stderr). */
  log(): string;
  /** Log lines mentioning `user <username>`. */
  userLog(username: string): string[];
}

function collectOutput(started: Started): () => string {
  let text = '';
  const keep = (chunk: Buffer): void => {
    text += chunk.toString('utf8');
    if (text.length > LOG_CAP) text = text.slice(-LOG_CAP);
  };
  started.child.stdout?.on('data', keep);
  started.child.stderr?.on('data', keep);
  return () => text;
}

/** Starts `turnserver` on 127.0.0.1 (TCP and UDP, no TLS/DTLS) and waits until its TCP port accepts. */
export async function startCoturn(group: ProcessGroup, options: CoturnOptions = {}): Promise<Coturn> {
  const turnserver = requireTool(TOOLS.turnserver);
  const realm = options.realm ?? 'onionturn.test';
  const port = options.port ?? (await freePort(HOST));
  const tlsPort = options.tls ? await freePort(HOST) : undefined;
  const relayPorts = options.relayPorts ?? portRange(200);
  // Own config, pid and db files: coturn otherwise reads /etc/turnserver.conf and writes /var.
  const dir = mkdtempSync(join(tmpdir(), 'onionturn-coturn-'));
  const config = join(dir, 'turnserver.conf');
  writeFileSync(config, '# empty: every option is on the command line\n');
  const args = [
    '-c',
    config,
    '--pidfile',
    join(dir, 'turnserver.pid'),
    '--db',
    join(dir, 'turndb'),
    '--realm',
    realm,
    ...(options.tls && tlsPort !== undefined ? ['--cert', options.tls.cert, '--pkey', options.tls.key, '--tls-listening-port', String(tlsPort)] : ['--no-tls']),
    '--no-dtls',
    '--allow-loopback-peers',
    '--listening-ip',
    HOST,
    '--relay-ip',
    HOST,
    '-p',
    String(port),
    '--min-port',
    String(relayPorts.min),
    '--max-port',
    String(relayPorts.max),
    '--no-cli',
    '--no-software-attribute',
    '--log-file',
    'stdout',
    '--simple-log',
  ];
  if (options.verbose ?? true) args.push('-v');
  if (options.secrets && options.secrets.length > 0) {
    args.push('--use-auth-secret');
    for (const secret of options.secrets) args.push(`--static-auth-secret=${secret}`);
  } else if (options.users) {
    args.push('--lt-cred-mech');
    for (const [name, password] of Object.entries(options.users)) args.push('--user', `${name}:${password}`);
  }
  args.push(...(options.extraArgs ?? []));
  const started = group.spawn('turnserver', turnserver, args);
  const log = collectOutput(started);
  started.child.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  await waitFor(
    `turnserver to accept TCP on ${HOST}:${port}`,
    async () => {
      if (started.child.exitCode !== null || started.child.signalCode !== null) {
        throw new Error(`turnserver exited (${started.child.exitCode ?? started.child.signalCode}) before listening:\n${log().slice(-4000)}`);
      }
      return (await canConnect(HOST, port, 500)) && (tlsPort === undefined || (await canConnect(HOST, tlsPort, 500)));
    },
    options.startTimeoutMs ?? 10_000,
  );
  return {
    host: HOST,
    port,
    ...(tlsPort !== undefined ? { tlsPort } : {}),
    realm,
    relayPorts,
    process: started,
    log,
    userLog: (username) =>
      log()
        .split('\n')
        .filter((line) => line.includes(`user <${username}>`)),
  };
}

export interface UclientOptions {
  readonly server: { readonly host: string; readonly port: number };
  /** `-u`/`-w`: explicit long-term credentials. */
  readonly username?: string;
  readonly password?: string;
  /** `-W`: let uclient derive REST credentials from this secret itself. */
  readonly secret?: string;
  /** `-e`/`-r`: the peer datagrams are relayed to (e.g. a turnutils_peer). */
  readonly peer?: { readonly host: string; readonly port: number };
  /** `-t`: TURN over TCP to the server (default true; false = UDP). */
  readonly tcp?: boolean;
  /** `-n` messages per client (default 5). */
  readonly messages?: number;
  /** `-m` clients (default 1). */
  readonly clients?: number;
  /** `-l` message length in bytes (default 100). */
  readonly length?: number;
  /** `-z` per-session packet interval in ms (uclient's default 20). */
  readonly intervalMs?: number;
  /** `-c`: no RTCP allocation (uclient still opens two allocations per client over UDP). */
  readonly noRtcp?: boolean;
  readonly extraArgs?: readonly string[];
  /** Kill uclient (by PID) after this long. Default 30 s. */
  readonly timeoutMs?: number;
  /** Run inside this network namespace. */
  readonly netns?: NetNamespace;
}

export interface UclientResult {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly output: string;
  /** From uclient's summary line; undefined when it never got that far (e.g. allocation refused). */
  readonly sent: number | undefined;
  readonly received: number | undefined;
  /** True when uclient reported it could not allocate. */
  readonly allocationFailed: boolean;
  /** From the summary: "Total lost packets N (P%)" and "Average round trip delay R ms". */
  readonly lostPackets: number | undefined;
  readonly lossPercent: number | undefined;
  readonly rttMs: number | undefined;
}

/** Runs a coturn tool to its end, killing it (by PID) after `timeoutMs`; its output interleaved. */
async function runToExit(
  group: ProcessGroup,
  label: string,
  bin: string,
  args: readonly string[],
  timeoutMs: number,
  netns?: NetNamespace,
): Promise<{ exitCode: number | null; signal: NodeJS.Signals | null; timedOut: boolean; output: string }> {
  const started = netns ? group.spawn(label, ...netns.wrap(bin, args)) : group.spawn(label, bin, [...args]);
  const output = collectOutput(started);
  // 'close', not 'exit': at 'exit' the tool's last output may still be in the pipes, and a run
  // read then looks like one that printed nothing (a refused allocation without its reason).
  const exited = once(started.child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    started.child.kill('SIGKILL');
  }, timeoutMs);
  const [exitCode, signal] = await exited;
  clearTimeout(timer);
  return { exitCode, signal, timedOut, output: output() };
}

/** Runs `turnutils_uclient` to completion and parses its summary. */
export async function runUclient(group: ProcessGroup, options: UclientOptions): Promise<UclientResult> {
  const uclient = requireTool(TOOLS.turnutilsUclient);
  const args: string[] = [];
  if (options.tcp ?? true) args.push('-t');
  if (options.username !== undefined) args.push('-u', options.username);
  if (options.password !== undefined) args.push('-w', options.password);
  if (options.secret !== undefined) args.push('-W', options.secret);
  if (options.peer) args.push('-e', options.peer.host, '-r', String(options.peer.port));
  args.push('-n', String(options.messages ?? 5), '-m', String(options.clients ?? 1), '-l', String(options.length ?? 100));
  if (options.intervalMs !== undefined) args.push('-z', String(options.intervalMs));
  if (options.noRtcp) args.push('-c');
  args.push(...(options.extraArgs ?? []));
  args.push('-p', String(options.server.port), options.server.host);
  const { exitCode, signal, timedOut, output: text } = await runToExit(group, 'turnutils_uclient', uclient, args, options.timeoutMs ?? 30_000, options.netns);
  const totals = /tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/m.exec(
    text
      .split('\n')
      .filter((l) => /start_mclient: tot_send_msgs=/.test(l))
      .pop() ?? '',
  );
  return {
    exitCode,
    signal,
    timedOut,
    output: text,
    sent: totals ? Number(totals[1]) : undefined,
    received: totals ? Number(totals[2]) : undefined,
    allocationFailed: /Cannot complete Allocation/.test(text),
    lostPackets: lastNumber(text, /Total lost packets (\d+)/g),
    lossPercent: lastNumber(text, /Total lost packets \d+ \(([\d.]+)%\)/g),
    rttMs: lastNumber(text, /Average round trip delay ([\d.]+) ms/g),
  };
}

export interface StunclientResult {
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  readonly output: string;
  /** What the server said the client's address is ("UDP reflexive addr"), if it answered. */
  readonly reflexive: { readonly address: string; readonly port: number } | undefined;
}

/** coturn's turnutils_stunclient: one classic STUN Binding over UDP, an independent client. */
export async function runStunclient(group: ProcessGroup, server: { host: string; port: number }, timeoutMs = 10_000): Promise<StunclientResult> {
  const bin = requireTool(TOOLS.turnutilsStunclient);
  const { exitCode, timedOut, output: text } = await runToExit(group, 'turnutils_stunclient', bin, ['-p', String(server.port), server.host], timeoutMs);
  const m = /UDP reflexive addr: ([\d.]+):(\d+)/.exec(text);
  return { exitCode, timedOut, output: text, reflexive: m ? { address: m[1] as string, port: Number(m[2]) } : undefined };
}

function lastNumber(text: string, re: RegExp): number | undefined {
  const all = [...text.matchAll(re)];
  const m = all[all.length - 1];
  return m ? Number(m[1]) : undefined;
}

export interface TurnutilsPeer {
  readonly host: string;
  readonly port: number;
  readonly process: Started;
}

/**
 * Starts `turnutils_peer`, a UDP echo peer, and waits until it echoes. `host` is a loopback
 * address to listen on: 127.0.0.1 (default) or ::1 for an IPv6 peer.
 */
export async function startTurnutilsPeer(
  group: ProcessGroup,
  options: { readonly host?: string; readonly port?: number; readonly startTimeoutMs?: number } = {},
): Promise<TurnutilsPeer> {
  const peer = requireTool(TOOLS.turnutilsPeer);
  const host = options.host ?? HOST;
  const port = options.port ?? (await freePort(host));
  const started = group.spawn('turnutils_peer', peer, ['-L', host, '-p', String(port)]);
  const probe = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  let echoed = false;
  probe.on('message', () => {
    echoed = true;
  });
  await new Promise<void>((resolve) => probe.bind(0, host, resolve));
  try {
    await waitFor(
      `turnutils_peer to echo on ${host}:${port}`,
      () => {
        if (started.child.exitCode !== null) throw new Error(`turnutils_peer exited (${started.child.exitCode}):\n${started.output()}`);
        if (!echoed) probe.send('onionturn-probe', port, host);
        return echoed;
      },
      options.startTimeoutMs ?? 5_000,
    );
  } finally {
    probe.close();
  }
  return { host, port, process: started };
}
