// The whole bridge on one machine, from real parts: a private Tor network, `onionturn server`
// (reached through a Tor exit, or at an onion address) and `onionturn client` (the shim) using
// the network's SOCKS port. Used by the end-to-end tests and by `npm start`.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, portRange } from './ports.js';
import { ProcessGroup, waitFor, type Started } from './processes.js';
import { onionturnBin } from './repo-root.js';
import { canConnect } from './sockets.js';
import { labProfile, type LabProfile } from './lab-profiles.js';
import { startTorNetwork, type TorNetwork } from './tor-network.js';

export interface ServerOptions {
  /**
   * TESTS ONLY: relay to any loopback peer. Default false: two browsers on one server reach each
   * other's relay address (a live relay of the server) without it.
   */
  readonly allowLoopbackPeers?: boolean;
  readonly args?: readonly string[];
  /** The `onionturn` CLI to run (default this checkout's): bench:call --compare runs another checkout's beside it. */
  readonly bin?: string;
}

export interface ShimOptions {
  readonly isolation?: 'per-flow' | 'shared';
  /**
   * Local-credential mode: apps use these static credentials, the shim fetches upstream ones from
   * the server's credential endpoint (through Tor). Without a password the CLI's own is used:
   * random, kept in ~/.config/onionturn/local-password as `onionturn client` keeps it.
   */
  readonly localCredentials?: { readonly user: string; readonly password?: string };
  /** The shim's TURN port (default a free one; npm start passes a stable one). */
  readonly port?: number;
  /** Reach the server at its .onion address instead of through an exit. */
  readonly onion?: boolean;
  /** Use the network's second client (another user's tor; the profile's `secondClient`) instead of the first. */
  readonly secondClient?: boolean;
  readonly args?: readonly string[];
  /** The `onionturn` CLI to run (default this checkout's), as ServerOptions.bin. */
  readonly bin?: string;
}

export interface BridgeOptions extends ShimOptions {
  readonly server?: ServerOptions;
  /** Lab profile of the Tor network (lab-profiles.ts), by name or value. Default 'ideal'. An onion profile implies `onion`. */
  readonly profile?: string | LabProfile;
  /** Onion mode: more local ports the onion service serves (virtual port = local port). */
  readonly extraOnionPorts?: readonly number[];
  readonly progress?: (message: string) => void;
}

export interface ServerHandle {
  readonly process: Started;
  readonly port: number;
  readonly credentialPort: number;
  /** The TURN URIs its credential endpoint answers with (where its credentials work). */
  readonly uris: readonly string[];
  readonly metricsPort: number;
  /** The server's Prometheus text. */
  metrics(): Promise<string>;
}

export interface ShimHandle {
  readonly process: Started;
  readonly port: number;
  /** How the shim reaches the server: tcp://127.0.0.1:P or HOST.onion:P. */
  readonly upstream: string;
  /** Local-credential mode: the credentials apps use, as the shim printed them in its iceServers. */
  readonly local?: { readonly username: string; readonly password: string };
  /** Its status page and /metrics: http://127.0.0.1:statusPort/ (a free port per shim, never the kept one). */
  readonly statusPort: number;
}

export interface RestCredentialJson {
  readonly username: string;
  readonly password: string;
  readonly ttl: number;
  readonly uris: readonly string[];
}

export interface Bridge {
  readonly tor: TorNetwork;
  /** The lab profile the Tor network was shaped with. */
  readonly profile: LabProfile;
  readonly server: ServerHandle;
  readonly shim: ShimHandle;
  readonly secretFile: string;
  /** A fresh REST credential from `onionturn credentials` (the real CLI). */
  credentials(): Promise<RestCredentialJson>;
  /**
   * Another server on the same Tor network and secret, reached through an exit; with `onionPort`
   * (one of BridgeOptions.extraOnionPorts) it listens there and is served at the onion address.
   */
  addServer(options?: ServerOptions, onionPort?: number): Promise<ServerHandle>;
  /** Another shim on the same Tor network, in front of `server`. */
  addShim(server: ServerHandle, options?: ShimOptions): Promise<ShimHandle>;
  stop(): Promise<void>;
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
      return canConnect('127.0.0.1', port);
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
    // The onion service must know the server's port before tor starts.
    const firstServerPort = await freePort();

    const profile = typeof options.profile === 'object' ? options.profile : labProfile(options.profile ?? 'ideal');
    const onion = options.onion ?? profile.onion;
    say(`starting the private Tor network (tor processes on 127.0.0.1), profile ${profile.name}: ${profile.description}`);
    tor = await startTorNetwork({
      ...(onion ? { onion: { targetPort: firstServerPort, extraPorts: options.extraOnionPorts ?? [] } } : {}),
      ...(profile.link ? { shape: profile.link } : {}),
      ...(profile.relayRateKbps === undefined ? {} : { relayBandwidthRate: Math.round((profile.relayRateKbps * 1000) / 8) }),
      bulkDownload: profile.bulkDownload,
      secondClient: profile.secondClient === true,
      ...(profile.bottleneck ? { bottleneck: profile.bottleneck } : {}),
      ...(profile.torrc ? { torrcExtra: profile.torrc } : {}),
      progress: (m) => say(`  tor: ${m}`),
    });
    say(`Tor network ready in ${(tor.timings.firstStreamMs / 1000).toFixed(1)} s (SOCKS 127.0.0.1:${tor.socksPort})`);
    const torNet = tor;

    const addServer = async (server: ServerOptions = {}, port?: number, onionHost?: string): Promise<ServerHandle> => {
      const serverPort = port ?? (await freePort());
      // Where the credentials it serves work: its onion address when it is the onion service,
      // else its loopback listener (reached through an exit).
      const uris = [`turn:${onionHost ?? '127.0.0.1'}:${serverPort}?transport=tcp`];
      const credentialPort = await freePort();
      const metricsPort = await freePort();
      const relay = portRange(400);
      say(`starting onionturn server on tcp://127.0.0.1:${serverPort}`);
      const started = group.spawn('onionturn server', process.execPath, [
        server.bin ?? onionturnBin(),
        'server',
        ...['--listen', `tcp://127.0.0.1:${serverPort}`, '--secret-file', secretFile],
        ...['--relay-ip', '127.0.0.1', '--relay-ports', `${relay.min}-${relay.max}`],
        ...['--metrics', `127.0.0.1:${metricsPort}`, '--credentials-listen', `127.0.0.1:${credentialPort}`],
        ...uris.flatMap((u) => ['--credentials-uri', u]),
        ...(server.allowLoopbackPeers === true ? ['--allow-loopback-peers'] : []),
        ...(server.args ?? []),
      ]);
      // The TURN listener comes up before the metrics and credential listeners: wait for all
      // three, or a server that died binding one of them would be handed to the tests.
      for (const port of [serverPort, metricsPort, credentialPort]) await waitListening('onionturn server', started, port);
      return {
        process: started,
        port: serverPort,
        credentialPort,
        uris,
        metricsPort,
        metrics: async () => {
          try {
            return await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
          } catch (error) {
            const state = started.child.exitCode === null ? 'running' : `exited ${started.child.exitCode}`;
            throw new Error(`metrics of onionturn server (${state}) unreachable: ${(error as Error).message}; its output: ${started.output().slice(-2000)}`);
          }
        },
      };
    };

    const addShim = async (server: ServerHandle, shim: ShimOptions = {}): Promise<ShimHandle> => {
      const shimPort = shim.port ?? (await freePort());
      const statusPort = await freePort();
      const upstream = shim.onion && torNet.onion ? `${torNet.onion.hostname}:${server.port}` : `tcp://127.0.0.1:${server.port}`;
      say(`starting onionturn client (shim) on 127.0.0.1:${shimPort} -> ${upstream} via Tor`);
      const local = shim.localCredentials;
      const socksPort = shim.secondClient ? torNet.secondClient?.socksPort : torNet.socksPort;
      if (socksPort === undefined) throw new Error(`profile ${profile.name} starts no second Tor client (LabProfile.secondClient)`);
      const started = group.spawn('onionturn client', process.execPath, [
        shim.bin ?? onionturnBin(),
        'client',
        ...['--listen', `127.0.0.1:${shimPort}`, '--server', upstream, '--socks', `127.0.0.1:${socksPort}`, '--allow-plaintext-upstream'],
        ...['--isolation', shim.isolation ?? 'per-flow', '--status', `127.0.0.1:${statusPort}`],
        ...(local
          ? [
              ...['--local-user', local.user, '--credentials-url', `http://127.0.0.1:${server.credentialPort}/credentials`],
              ...(local.password === undefined ? [] : ['--local-password', local.password]),
            ]
          : []),
        ...(shim.args ?? []),
      ]);
      let stdout = '';
      started.child.stdout?.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
      await waitListening('onionturn client', started, shimPort);
      await waitListening('onionturn client status page', started, statusPort);
      say(`onionturn client status page: http://127.0.0.1:${statusPort}/`);
      if (!local) return { process: started, port: shimPort, upstream, statusPort };
      // The iceServers it prints carry the password (also one the CLI keeps in its file).
      const printed = await waitFor('onionturn client to print its iceServers', () => printedLocal(stdout), 10_000, 20);
      return { process: started, port: shimPort, upstream, statusPort, local: printed };
    };

    const server = await addServer(options.server, firstServerPort, onion ? torNet.onion?.hostname : undefined);
    const shim = await addShim(server, { ...options, onion });
    return {
      tor: torNet,
      profile,
      server,
      shim,
      secretFile,
      credentials: async () => JSON.parse(await runCli(['credentials', '--secret-file', secretFile, '--format', 'json'])) as RestCredentialJson,
      addServer: (o, onionPort) => {
        if (onionPort === undefined) return addServer(o);
        if (!torNet.onion || !(options.extraOnionPorts ?? []).includes(onionPort)) {
          throw new Error(`addServer: port ${onionPort} is not one the onion service serves (BridgeOptions.extraOnionPorts)`);
        }
        return addServer(o, onionPort, torNet.onion.hostname);
      },
      addShim,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The username and credential of the iceServers JSON `onionturn client` prints on stdout, once whole. */
export function printedLocal(stdout: string): { username: string; password: string } | undefined {
  const start = stdout.indexOf('{');
  if (start < 0) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout.slice(start));
  } catch {
    return undefined;
  }
  const first = (parsed as { iceServers?: { username?: unknown; credential?: unknown }[] }).iceServers?.[0];
  return typeof first?.username === 'string' && typeof first.credential === 'string' ? { username: first.username, password: first.credential } : undefined;
}

/** Sums the samples of one Prometheus metric, over the label sets that contain `labels` (e.g. 'direction="to_peer"'). */
export function metricSum(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{') && line.includes(labels)) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}
