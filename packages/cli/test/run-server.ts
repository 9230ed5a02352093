// Starts the real `onionturn server` (bin/onionturn.js) on loopback ports chosen by the OS and
// reads the bound listeners from its JSON log.
import { portRange, waitFor, type ProcessGroup, type Started } from '@onionturn/testkit';
import { BIN, cleanEnv } from './run-cli.js';

export interface RunningServer {
  readonly process: Started;
  readonly tcp: number;
  readonly udp: number;
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
      return /"listeners":\["tcp:\/\/127\.0\.0\.1:(\d+)","udp:\/\/127\.0\.0\.1:(\d+)"\]/.exec(started.output()) ?? undefined;
    },
    10_000,
    50,
  );
  return { process: started, tcp: Number(listeners[1]), udp: Number(listeners[2]), relayPorts };
}
