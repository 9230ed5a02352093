// `onionturn client`: the local TURN shim. Wiring only: parse options into ShimOptions, find the
// SOCKS port, start, print the iceServers to paste into an app, stop on SIGINT/SIGTERM.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { CommandModule } from 'yargs';
import {
  ISOLATION_MODES,
  Shim,
  createLogger,
  formatHostPort,
  iceServers,
  parseHostPort,
  parseListen,
  parsePin,
  parseUpstream,
  type HostPort,
  type IsolationMode,
  type UpstreamServer,
} from '@onionturn/client';
import type { CliContext } from '../cli-context.js';
import { UsageError } from '../exit-codes.js';

interface ClientArgs {
  listen: string;
  allowRemote: boolean;
  server?: string[];
  socks?: string;
  isolation: IsolationMode;
  pin?: string[];
  ca?: string;
  logSensitive: boolean;
  logLevel: string;
}

/** Tor's usual SOCKS ports: the tor daemon, then Tor Browser. */
const DEFAULT_SOCKS: readonly HostPort[] = [
  { host: '127.0.0.1', port: 9050 },
  { host: '127.0.0.1', port: 9150 },
];

function answers(hp: HostPort, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: hp.host, port: hp.port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

function asList(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

export function clientCommand(ctx: CliContext): CommandModule {
  return {
    command: 'client',
    describe: 'run the local TURN shim: apps speak TURN to it, it carries each flow through its own Tor stream',
    builder: (y) =>
      y
        .option('listen', { type: 'string', default: '127.0.0.1:3478', requiresArg: true, describe: 'UDP and TCP listener (loopback unless --allow-remote)' })
        .option('allow-remote', { type: 'boolean', default: false, describe: 'allow a non-loopback --listen address' })
        .option('server', { type: 'string', array: true, requiresArg: true, describe: 'upstream tcp://HOST:PORT, tls://HOST:PORT or HOST.onion:PORT; repeat for failover' })
        .option('socks', { type: 'string', requiresArg: true, describe: "Tor's SOCKS port (default 127.0.0.1:9050, then 9150)" })
        .option('isolation', { choices: ISOLATION_MODES, default: 'per-flow' as IsolationMode, describe: 'per-flow: a circuit per app flow; shared: one for all' })
        .option('pin', { type: 'string', array: true, requiresArg: true, describe: 'tls:// server key pin sha256/BASE64 (SPKI); repeatable' })
        .option('ca', { type: 'string', requiresArg: true, describe: 'PEM CA file for tls:// servers (when not pinning)' })
        .option('log-sensitive', { type: 'boolean', default: false, describe: 'log app addresses and server names (debugging only; off: SafeLogging)' })
        .option('log-level', { choices: ['error', 'warn', 'info', 'debug'], default: 'info' }),
    handler: async (argv) => {
      const args = argv as unknown as ClientArgs;
      const servers: UpstreamServer[] = [];
      for (const text of asList(args.server)) {
        const r = parseUpstream(text);
        if (!r.ok) throw new UsageError(`--server: ${r.reason}`);
        servers.push(r.value);
      }
      if (servers.length === 0) throw new UsageError('no upstream: give --server tcp://HOST:PORT, tls://HOST:PORT or HOST.onion:PORT');
      const listen = parseListen(args.listen, args.allowRemote);
      if (!listen.ok) throw new UsageError(`--${listen.reason}`);
      const pins = asList(args.pin).map((p) => {
        const r = parsePin(p);
        if (!r.ok) throw new UsageError(`--pin: ${r.reason}`);
        return r.value;
      });
      let ca: Buffer | undefined;
      if (args.ca !== undefined) {
        try {
          ca = readFileSync(args.ca);
        } catch (error) {
          throw new UsageError(`cannot read --ca ${args.ca}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
        }
      }
      let socks: HostPort | undefined;
      if (args.socks !== undefined) {
        const r = parseHostPort(args.socks);
        if (!r.ok) throw new UsageError(`--socks: ${r.reason}`);
        socks = r.value;
      } else {
        for (const candidate of DEFAULT_SOCKS) {
          if (await answers(candidate)) {
            socks = candidate;
            break;
          }
        }
        if (!socks) {
          throw new Error('no SOCKS port answers at 127.0.0.1:9050 or 127.0.0.1:9150: start tor (apt-get install tor) or pass --socks HOST:PORT');
        }
      }
      const logger = createLogger({ level: args.logLevel });
      const shim = new Shim({
        listen: listen.value,
        allowRemote: args.allowRemote,
        servers,
        socks,
        isolation: args.isolation,
        logger,
        tls: { pins, ...(ca ? { ca } : {}) },
        detail: args.logSensitive,
      });
      const addr = await shim.start();
      ctx.out(`${JSON.stringify({ iceServers: iceServers(addr.host, addr.port) }, null, 2)}\n`);
      logger.info(`paste the iceServers above into the app; TURN at ${formatHostPort(addr.host, addr.port)}`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.removeListener('SIGINT', stop);
          process.removeListener('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await shim.stop();
      logger.info('stopped');
    },
  };
}
