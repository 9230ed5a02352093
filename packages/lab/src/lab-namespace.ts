// A network namespace for a lab profile that needs loopback unlike the host's (tor-congested):
// its own lo with the profile's MTU and its own net.ipv4.tcp_rmem / tcp_wmem (both are per
// namespace), so the host and everything else on it keep theirs. A benchmark re-runs itself
// inside (runInLabNamespace) and everything it starts, tor, the bridge, coturn and Chromium,
// then talks over that loopback only.
import { spawn } from 'node:child_process';
import type { LabNamespaceSettings } from './lab-profiles.js';
import { NetNamespace } from './netns.js';

/** Set inside: the name of the lab namespace the process runs in. */
export const LAB_NAMESPACE_ENV = 'ONIONTURN_LAB_NAMESPACE';

/** Creates the namespace with lo up, the MTU and the TCP buffer sysctls. Needs root. */
export function createLabNamespace(settings: LabNamespaceSettings): NetNamespace {
  const ns = NetNamespace.create([]);
  try {
    ns.run('ip', ['link', 'set', 'lo', 'mtu', String(settings.mtu)]);
    ns.run('sysctl', ['-q', '-w', `net.ipv4.tcp_rmem=${settings.tcpRmem}`, `net.ipv4.tcp_wmem=${settings.tcpWmem}`]);
  } catch (err) {
    ns.delete();
    throw err;
  }
  return ns;
}

/**
 * Runs `node [execArgv] script args` inside a fresh lab namespace, passing SIGINT/SIGTERM on,
 * deletes the namespace afterwards and resolves with the child's exit code.
 */
export async function runInLabNamespace(settings: LabNamespaceSettings, script: string, args: readonly string[]): Promise<number> {
  const ns = createLabNamespace(settings);
  try {
    const [bin, argv] = ns.wrap(process.execPath, [...process.execArgv, script, ...args]);
    const child = spawn(bin, argv, { stdio: 'inherit', env: { ...process.env, [LAB_NAMESPACE_ENV]: ns.name } });
    const pass = (sig: NodeJS.Signals): void => {
      child.kill(sig);
    };
    process.on('SIGINT', pass);
    process.on('SIGTERM', pass);
    const code = await new Promise<number>((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 128 : 1))));
    process.off('SIGINT', pass);
    process.off('SIGTERM', pass);
    return code;
  } finally {
    ns.delete();
  }
}
