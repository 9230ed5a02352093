// The embedded tor's torrc and the lines of its log the shim acts on. Pure: the process is run
// by managed-tor.ts.

export interface ManagedTorrcOptions {
  readonly dataDir: string;
  /** tor exits by itself once this process is gone, so a killed shim can't leak it. */
  readonly owningPid: number;
  /** Extra torrc text from --tor-config (e.g. a private test network's DirAuthority lines). */
  readonly extra?: string;
  /** A restart: the SocksPort the first tor opened, so the shim's dials find tor where they were. */
  readonly socks?: { readonly host: string; readonly port: number };
}

export function managedTorrc(o: ManagedTorrcOptions): string {
  if (/[\s"#\\]/.test(o.dataDir)) throw new Error(`tor data directory must not contain whitespace, quotes, # or \\: ${o.dataDir}`);
  const lines = [
    '# written by onionturn client for its own tor; extra lines from --tor-config follow',
    `DataDirectory ${o.dataDir}`,
    // A free port picked by tor; its log line says which (see parseTorLine). A restart keeps it.
    o.socks ? `SocksPort ${o.socks.host.includes(':') ? `[${o.socks.host}]` : o.socks.host}:${o.socks.port}` : 'SocksPort 127.0.0.1:auto',
    'ControlPort 0',
    'Log notice stdout',
    'RunAsDaemon 0',
    `__OwningControllerProcess ${o.owningPid}`,
  ];
  return lines.join('\n') + '\n' + (o.extra ? `${o.extra.trimEnd()}\n` : '');
}

/** The owning PID a torrc written by managedTorrc names, if any (stale directories are judged by it). */
export function torrcOwner(torrc: string): number | undefined {
  const m = /^__OwningControllerProcess (\d+)$/m.exec(torrc);
  return m ? Number(m[1]) : undefined;
}

export type TorLogEvent =
  | { readonly kind: 'socks'; readonly host: string; readonly port: number }
  | { readonly kind: 'bootstrap'; readonly percent: number; readonly summary: string }
  | { readonly kind: 'problem'; readonly level: 'warn' | 'err'; readonly text: string };

const SOCKS = /\[notice\] Opened Socks listener connection \(ready\) on (127\.\d+\.\d+\.\d+|\[::1\]):(\d+)/;
const BOOTSTRAP = /\[notice\] Bootstrapped (\d+)% \([^)]*\): (.*)$/;
const PROBLEM = /\[(warn|err)\] (.*)$/;

/** What one line of tor's stdout log means to the shim, or undefined. */
export function parseTorLine(line: string): TorLogEvent | undefined {
  let m = SOCKS.exec(line);
  if (m) return { kind: 'socks', host: (m[1] as string).replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  m = BOOTSTRAP.exec(line);
  if (m) return { kind: 'bootstrap', percent: Number(m[1]), summary: (m[2] as string).trim() };
  m = PROBLEM.exec(line);
  if (m) return { kind: 'problem', level: m[1] as 'warn' | 'err', text: (m[2] as string).trim() };
  return undefined;
}
