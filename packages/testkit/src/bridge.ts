// The whole bridge on one machine, from real parts: a private Tor network, `onionturn server`
// (reached through a Tor exit, or at an onion address) and `onionturn client` (the shim) using
// the network's SOCKS port. Used by the end-to-end tests and by `npm start`.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, portRange } from './ports.js';
import { ProcessGroup, sleep, waitFor, type Started } from './processes.js';
import { onionturnBin } from './repo-root.js';
import { startTorNetwork, type TorNetwork } from './tor-network.js';

export interface BridgeOptions {
  /** Reach the server at its .onion address instead of through an exit. */
  readonly onion?: boolean;
  readonly isolation?: 'per-flow' | 'shared';
  /** Shim in local-credential mode: apps use these static credentials. */
  readonly localCredentials?: { readonly user: string; readonly password: string };
  /** Extra flags for `onionturn server` / `onionturn client`. */
  readonly serverArgs?: readonly string[];
  readonly clientArgs?: readonly string[];
  readonly progress?: (message: string) => void;
}

export interface RestCredentialJson {
  readonly username: string;
  readonly password: string;
  readonly ttl: number;
  readonly uris: readonly string[];
}

export interface Bridge {
  readonly tor: TorNetwork;
  readonly server: Started;
  readonly shim: Started;
  readonly serverPort: number;
  readonly credentialPort: number;
  readonly metricsPort: number;
  readonly shimPort: number;
  readonly secretFile: string;
  /** How the shim reaches the server: tcp://127.0.0.1:P or HOST.onion:P. */
  readonly upstream: string;
  /** A fresh REST credential from `onionturn credentials` (the real CLI). */
  credentials(): Promise<RestCredentialJson>;
  /** The server's Prometheus text. */
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

async function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function runCli(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [onionturnBin(), ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`onionturn ${args[0]} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

async function waitListening(what: string, started: Started, port: number): Promise<void> {
  await waitFor(
    `${what} to listen on 127.0.0.1:${port}`,
    async () => {
      if (started.child.exitCode !== null) throw new Error(`${what} exited (${started.child.exitCode}): ${started.output().slice(-2000)}`);
      return tcpAccepts(port);
    },
    20_000,
  );
}

export async function startBridge(options: BridgeOptions = {}): Promise<Bridge> {
  const say = options.progress ?? ((): void => undefined);
  const group = new ProcessGroup();
  const dir = mkdtempSync(join(tmpdir(), 'onionturn-bridge-'));
  let tor: TorNetwork | undefined;
  const stop = async (): Promise<void> => {
    await group.stopAll();
    await tor?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    const serverPort = await freePort();
    const credentialPort = await freePort();
    const metricsPort = await freePort();
    const shimPort = await freePort();
    const relay = portRange(400);

    say('starting the private Tor network (tor processes on 127.0.0.1)');
    tor = await startTorNetwork({ ...(options.onion ? { onion: { targetPort: serverPort } } : {}), progress: (m) => say(`  tor: ${m}`) });
    say(`Tor network ready in ${(tor.timings.firstStreamMs / 1000).toFixed(1)} s (SOCKS 127.0.0.1:${tor.socksPort})`);

    say(`starting onionturn server on tcp://127.0.0.1:${serverPort}`);
    const server = group.spawn('onionturn server', process.execPath, [
      onionturnBin(),
      'server',
      '--listen',
      `tcp://127.0.0.1:${serverPort}`,
      '--secret-file',
      secretFile,
      '--relay-ip',
      '127.0.0.1',
      '--relay-ports',
      `${relay.min}-${relay.max}`,
      // The browsers' relay addresses are on 127.0.0.1 here, so peers are loopback: tests only.
      '--allow-loopback-peers',
      '--metrics',
      `127.0.0.1:${metricsPort}`,
      '--credentials-listen',
      `127.0.0.1:${credentialPort}`,
      ...(options.serverArgs ?? []),
    ]);
    await waitListening('onionturn server', server, serverPort);

    const upstream = options.onion && tor.onion ? `${tor.onion.hostname}:${serverPort}` : `tcp://127.0.0.1:${serverPort}`;
    say(`starting onionturn client (shim) on 127.0.0.1:${shimPort} -> ${upstream} via Tor`);
    const local = options.localCredentials;
    const shim = group.spawn('onionturn client', process.execPath, [
      onionturnBin(),
      'client',
      '--listen',
      `127.0.0.1:${shimPort}`,
      '--server',
      upstream,
      '--socks',
      `127.0.0.1:${tor.socksPort}`,
      '--isolation',
      options.isolation ?? 'per-flow',
      ...(local ? ['--local-user', local.user, '--local-password', local.password, '--credentials-url', `http://127.0.0.1:${credentialPort}/credentials`] : []),
      ...(options.clientArgs ?? []),
    ]);
    await waitListening('onionturn client', shim, shimPort);
    // The shim's UDP side binds with the TCP side; give it a moment to print its banner.
    await sleep(100);
    const torNet = tor;
    return {
      tor: torNet,
      server,
      shim,
      serverPort,
      credentialPort,
      metricsPort,
      shimPort,
      secretFile,
      upstream,
      credentials: async () => JSON.parse(await runCli(['credentials', '--secret-file', secretFile, '--format', 'json', '--uri', `turn:127.0.0.1:${shimPort}`])) as RestCredentialJson,
      metrics: async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Sums the samples of one Prometheus metric (all label sets). */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}
