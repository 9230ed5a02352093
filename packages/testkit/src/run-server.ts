// Starts the real `onionturn server` (bin/onionturn.js) on loopback ports chosen by the OS and
// reads the bound listeners from its JSON log.
import { onionturnBin, portRange, waitFor, type NetNamespace, type ProcessGroup, type Started } from '@onionturn/lab';
import { cleanEnv } from './run-cli.js';

export interface BoundListener {
  readonly protocol: string;
  /** Without brackets, e.g. ::1 or 127.0.0.1. */
  readonly host: string;
  readonly port: number;
}

export interface RunningServer {
  readonly process: Started;
  readonly tcp: number;
  readonly udp: number;
  /** Every listener as logged, e.g. tls://127.0.0.1:40000 → port by protocol (the first of each). */
  readonly ports: Readonly<Record<string, number>>;
  /** Every listener, in the order given. */
  readonly listeners: readonly BoundListener[];
  readonly relayPorts: { readonly min: number; readonly max: number };
}

export interface StartServerOptions {
  /** --listen values replacing the default tcp:// and udp:// on 127.0.0.1 port 0. */
  readonly listen?: readonly string[];
  /** Run the server inside this network namespace. */
  readonly netns?: NetNamespace;
  /** How long to wait for its listeners (default 30 s; a cluster forks and starts its workers first). */
  readonly startTimeoutMs?: number;
  /** --relay-ports instead of a free range of 4000. */
  readonly relayPorts?: { readonly min: number; readonly max: number };
}

/** Parses a logged listener: tcp://127.0.0.1:3478 or tcp://[::1]:3478. */
export function parseListener(text: string): BoundListener | undefined {
  const m = /^(\w+):\/\/(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  if (!m) return undefined;
  return { protocol: m[1] as string, host: (m[2] ?? m[3]) as string, port: Number(m[4]) };
}

export async function startServer(
  group: ProcessGroup,
  args: readonly string[],
  env: Record<string, string> = {},
  options: StartServerOptions = {},
): Promise<RunningServer> {
  const relayPorts = options.relayPorts ?? portRange(4000);
  const listen = options.listen ?? ['tcp://127.0.0.1:0', 'udp://127.0.0.1:0'];
  // One process unless the test asks for workers: most interop tests examine one server's
  // behaviour (and the default, a worker per core, triples the processes a test suite starts on
  // 2 cores). The tests of --workers say how many; server-workers-default checks the default.
  const workers = args.includes('--workers') ? [] : ['--workers', '1'];
  const argv = [
    onionturnBin(),
    'server',
    ...listen.flatMap((l) => ['--listen', l]),
    '--relay-ports',
    `${relayPorts.min}-${relayPorts.max}`,
    ...workers,
    ...args,
  ];
  const [bin, binArgs] = options.netns ? options.netns.wrap(process.execPath, argv) : [process.execPath, argv];
  const started = group.spawn('onionturn server', bin, binArgs, { env: cleanEnv(env) });
  const logged = await waitFor(
    'onionturn server to log its listeners',
    () => {
      if (started.child.exitCode !== null) throw new Error(`onionturn server exited ${started.child.exitCode}: ${started.output()}`);
      // One JSON object per line; IPv6 listeners are bracketed ("tcp://[::1]:3478").
      for (const line of started.output().split('\n')) {
        if (!line.includes('"server-started"')) continue;
        const entry = JSON.parse(line) as { listeners?: string[] };
        if (entry.listeners) return entry.listeners;
      }
      return undefined;
    },
    // The server runs a worker per core by default: the primary and each worker load the CLI, which
    // took 12 s on a loaded 2-core machine (10 s was enough for one process).
    options.startTimeoutMs ?? 30_000,
    50,
  );
  const listeners: BoundListener[] = [];
  const ports: Record<string, number> = {};
  for (const l of logged) {
    const b = parseListener(l);
    if (!b) throw new Error(`unexpected listener in the log: ${l}`);
    listeners.push(b);
    if (ports[b.protocol] === undefined) ports[b.protocol] = b.port;
  }
  return { process: started, tcp: ports['tcp'] ?? 0, udp: ports['udp'] ?? 0, ports, listeners, relayPorts };
}

/** The port of the listener for protocol on host (e.g. 'tcp', '::1'). */
export function listenerPort(server: RunningServer, protocol: string, host: string): number {
  const l = server.listeners.find((b) => b.protocol === protocol && b.host === host);
  if (!l) throw new Error(`no ${protocol} listener on ${host}: ${JSON.stringify(server.listeners)}`);
  return l.port;
}
