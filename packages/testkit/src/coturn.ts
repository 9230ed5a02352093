// coturn's tools as independent TURN parts: `turnserver` (server), `turnutils_peer` (UDP echo
// peer) and `turnutils_uclient` (client and load generator). Loopback only, started per test.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOOLS, requireTool } from './tools.js';
import type { ProcessGroup} from './processes.js';
import { waitFor, type Started } from './processes.js';
import { freePort, portRange } from './ports.js';
import { canConnect, udpBound } from './sockets.js';

export interface CoturnOptions {
  readonly secret: string;
  readonly realm?: string;
  /** Extra turnserver flags. */
  readonly extraArgs?: readonly string[];
}

export interface Coturn {
  readonly port: number;
  readonly realm: string;
  readonly process: Started;
}

/** turnserver with REST secret auth, plain TCP/UDP listener on 127.0.0.1, loopback peers allowed. */
export async function startCoturn(group: ProcessGroup, opts: CoturnOptions): Promise<Coturn> {
  const bin = requireTool(TOOLS.turnserver);
  const port = await freePort();
  const relay = portRange(200);
  const realm = opts.realm ?? 'onionturn.test';
  const proc = group.spawn('turnserver', bin, [
    '-n', '--no-cli', '--log-file=stdout', '--simple-log', '--no-tls', '--no-dtls',
    '--use-auth-secret', `--static-auth-secret=${opts.secret}`, `--realm=${realm}`,
    '--allow-loopback-peers', '--listening-ip', '127.0.0.1', '--relay-ip', '127.0.0.1',
    '-p', String(port), '--min-port', String(relay.min), '--max-port', String(relay.max),
    '--pidfile', join(mkdtempSync(join(tmpdir(), 'coturn-')), 'turnserver.pid'),
    ...(opts.extraArgs ?? []),
  ]);
  await waitFor(`turnserver on 127.0.0.1:${port} (output: ${proc.output().slice(-500)})`, async () => {
    if (proc.child.exitCode !== null) throw new Error(`turnserver exited: ${proc.output().slice(-2000)}`);
    return canConnect('127.0.0.1', port);
  }, 10_000);
  return { port, realm, process: proc };
}

/** turnutils_peer: a UDP echo peer on 127.0.0.1. */
export async function startTurnPeer(group: ProcessGroup): Promise<{ port: number; process: Started }> {
  const bin = requireTool(TOOLS.turnutilsPeer);
  const port = await freePort();
  const proc = group.spawn('turnutils_peer', bin, ['-L', '127.0.0.1', '-p', String(port)]);
  await waitFor(`turnutils_peer on udp 127.0.0.1:${port}`, () => udpBound(port) || proc.child.exitCode !== null, 5000);
  if (proc.child.exitCode !== null) throw new Error(`turnutils_peer exited: ${proc.output()}`);
  return { port, process: proc };
}

export interface UclientResult {
  readonly exitCode: number | null;
  readonly sent: number;
  readonly received: number;
  readonly lostPackets: number;
  readonly lossPercent: number;
  readonly rttMs: number;
  readonly output: string;
}

export interface UclientOptions {
  readonly serverPort: number;
  readonly peerPort: number;
  /** TURN over TCP to the server (-t). */
  readonly tcp?: boolean;
  readonly clients?: number;
  readonly messages?: number;
  readonly length?: number;
  readonly intervalMs?: number;
  /** REST secret (-W) or static credentials (-u/-w). */
  readonly secret?: string;
  readonly user?: string;
  readonly password?: string;
  readonly extraArgs?: readonly string[];
  readonly timeoutMs?: number;
}

/** Runs turnutils_uclient to completion (killed by PID after timeoutMs) and parses its summary. */
export async function runUclient(group: ProcessGroup, opts: UclientOptions): Promise<UclientResult> {
  const bin = requireTool(TOOLS.turnutilsUclient);
  const args = [
    ...(opts.tcp ? ['-t'] : []),
    '-c', // no RTCP allocation: one allocation per client
    '-p', String(opts.serverPort), '-e', '127.0.0.1', '-r', String(opts.peerPort),
    '-m', String(opts.clients ?? 1), '-n', String(opts.messages ?? 20), '-l', String(opts.length ?? 120),
    '-z', String(opts.intervalMs ?? 20),
    ...(opts.secret ? ['-W', opts.secret] : []),
    ...(opts.user ? ['-u', opts.user] : []),
    ...(opts.password ? ['-w', opts.password] : []),
    ...(opts.extraArgs ?? []),
    '127.0.0.1',
  ];
  const proc = group.spawn('turnutils_uclient', bin, args);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const exitCode = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
    proc.child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  const out = proc.output();
  const num = (re: RegExp): number => {
    const all = [...out.matchAll(new RegExp(re, 'g'))];
    const m = all[all.length - 1];
    return m ? Number(m[1]) : NaN;
  };
  return {
    exitCode,
    sent: num(/tot_send_msgs=(\d+), tot_recv_msgs=\d+\n/),
    received: num(/tot_send_msgs=\d+, tot_recv_msgs=(\d+)\n/),
    lostPackets: num(/Total lost packets (\d+)/),
    lossPercent: num(/Total lost packets \d+ \(([\d.]+)%\)/),
    rttMs: num(/Average round trip delay ([\d.]+) ms/),
    output: out,
  };
}

/** Runs a command to completion and returns its output (for one-shot tools). */
export function runToCompletion(command: string, args: readonly string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
