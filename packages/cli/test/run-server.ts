// Starts the real `onionturn server` (bin/onionturn.js) on loopback ports chosen by the OS and
// reads the bound listeners from its JSON log.
import { portRange, waitFor, type ProcessGroup, type Started } from '@onionturn/testkit';
import { BIN, cleanEnv } from './run-cli.js';

export interface RunningServer {
  readonly process: Started;
  readonly tcp: number;
  readonly udp: number;
  /** Every listener as logged, e.g. tls://127.0.0.1:40000 → port by protocol. */
  readonly ports: Readonly<Record<string, number>>;
  readonly relayPorts: { readonly min: number; readonly max: number };
}

export async function startServer(group: ProcessGroup, args: readonly string[], env: Record<string, string> = {}): Promise<RunningServer> {
  const relayPorts = portRange(4000);
  const started = group.spawn('onionturn server', process.execPath, [
    BIN, 'server',
    '--listen', 'tcp://127.0.0.1:0',
    '--listen', 'udp://127.0.0.1:0',
    '--relay-ports', `${relayPorts.min}-${relayPorts.max}`,
    ...args,
  ], { env: cleanEnv(env) });
  const listeners = await waitFor(
    'onionturn server to log its listeners',
    () => {
      if (started.child.exitCode !== null) throw new Error(`onionturn server exited ${started.child.exitCode}: ${started.output()}`);
      const m = /"listeners":(\[[^\]]*\])/.exec(started.output());
      return m ? (JSON.parse(m[1] as string) as string[]) : undefined;
    },
    10_000,
    50,
  );
  const ports: Record<string, number> = {};
  for (const l of listeners) {
    const m = /^(\w+):\/\/.*:(\d+)$/.exec(l);
    if (m && ports[m[1] as string] === undefined) ports[m[1] as string] = Number(m[2]);
  }
  return { process: started, tcp: ports['tcp'] ?? 0, udp: ports['udp'] ?? 0, ports, relayPorts };
}
