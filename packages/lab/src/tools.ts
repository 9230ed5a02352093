// Real tools the integration tests need. A missing tool is installed with apt-get when we
// are root (CI and fresh machines), otherwise the test fails loudly with the command to run.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface ToolSpec {
  /** Executable looked up on PATH (or an absolute path). */
  readonly command: string;
  /** Debian package that provides it. */
  readonly debianPackage: string;
  /** A file the package installs that must exist too (a Python module, say). */
  readonly file?: string;
}

export const TOOLS = {
  tor: { command: 'tor', debianPackage: 'tor' },
  torGencert: { command: 'tor-gencert', debianPackage: 'tor' },
  turnserver: { command: 'turnserver', debianPackage: 'coturn' },
  turnutilsUclient: { command: 'turnutils_uclient', debianPackage: 'coturn' },
  turnutilsPeer: { command: 'turnutils_peer', debianPackage: 'coturn' },
  turnutilsStunclient: { command: 'turnutils_stunclient', debianPackage: 'coturn' },
  microsocks: { command: 'microsocks', debianPackage: 'microsocks' },
  chromium: { command: 'chromium', debianPackage: 'chromium' },
  docker: { command: 'docker', debianPackage: 'docker.io' },
  dockerd: { command: 'dockerd', debianPackage: 'docker.io' },
  dockerCompose: { command: 'docker-compose', debianPackage: 'docker-compose' },
  debootstrap: { command: 'debootstrap', debianPackage: 'debootstrap' },
  /** A private mount namespace, to run a container's script at its in-image paths on the host. */
  unshare: { command: 'unshare', debianPackage: 'util-linux' },
  /** Lowers a running server's open-file limit (a fault test: descriptors exhausted). */
  prlimit: { command: 'prlimit', debianPackage: 'util-linux' },
  openssl: { command: 'openssl', debianPackage: 'openssl' },
  /** For a raw socket in one test (a datagram from source port 0, which Node cannot send). */
  python3: { command: 'python3', debianPackage: 'python3' },
  /** PySocks for Debian's own python3 (a SOCK_DGRAM socket through a SOCKS5 UDP ASSOCIATE). */
  pysocks: { command: '/usr/bin/python3', debianPackage: 'python3-socks', file: '/usr/lib/python3/dist-packages/socks.py' },
  dig: { command: 'dig', debianPackage: 'bind9-dnsutils' },
  /** A real DNS server (behind a forward, or a datagram onion service). */
  dnsmasq: { command: 'dnsmasq', debianPackage: 'dnsmasq' },
  iperf3: { command: 'iperf3', debianPackage: 'iperf3' },
  socat: { command: 'socat', debianPackage: 'socat' },
  /** Network namespaces and veth links (a server's public-looking address; the lab's congested relay). */
  ip: { command: 'ip', debianPackage: 'iproute2' },
  /** The lab's congested relay: htb on its router's links (relay-bottleneck.ts). */
  tc: { command: 'tc', debianPackage: 'iproute2' },
  /** Loopback captures for the round-trip breakdown (scripts/rtt-breakdown.mjs --capture). */
  tcpdump: { command: 'tcpdump', debianPackage: 'tcpdump' },
  /** Publishes one onion address for many onion-service backends (v3, talks to a tor control port). */
  onionbalance: { command: 'onionbalance', debianPackage: 'onionbalance' },
} as const satisfies Record<string, ToolSpec>;

/** Absolute path of an executable on PATH (plus the sbin dirs apt uses), or undefined. */
export function findExecutable(command: string): string | undefined {
  if (command.includes('/')) return isExecutable(command) ? command : undefined;
  const dirs = (process.env['PATH'] ?? '').split(delimiter).concat(['/usr/sbin', '/usr/bin', '/sbin', '/bin']);
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, command);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

let aptUpdated = false;

/**
 * Returns the tool's absolute path, installing its Debian package first when it is missing
 * and we can (root with apt-get). Throws an Error naming the install command otherwise.
 */
export function requireTool(spec: ToolSpec): string {
  const found = findExecutable(spec.command);
  if (found && (spec.file === undefined || existsSync(spec.file))) return found;
  const howTo = `install it with: apt-get install -y ${spec.debianPackage}`;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !findExecutable('apt-get')) {
    throw new Error(`required tool '${spec.command}' is missing; ${howTo}`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
    aptUpdated = true;
  }
  try {
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', spec.debianPackage], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
    });
  } catch (err) {
    throw new Error(`required tool '${spec.command}' is missing and apt-get failed (${String(err)}); ${howTo}`);
  }
  const installed = findExecutable(spec.command);
  if (spec.file !== undefined && !existsSync(spec.file)) throw new Error(`apt-get installed ${spec.debianPackage} but ${spec.file} is still missing`);
  if (!installed) throw new Error(`apt-get installed ${spec.debianPackage} but '${spec.command}' is still not found`);
  return installed;
}
