// `onionturn credentials serve`: the draft's credential HTTP API on its own listener. The TURN
// server mounts the same handler (from '@onionturn/credentials/http') next to its other routes.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CommandModule } from 'yargs';
import { createCredentialHandler } from '@onionturn/credentials/http';
import type { CliContext } from '../cli-context.js';
import { givenOnCommandLine, isLoopback, parseListen, readSecretFile, resolveSecrets, wholeNumber } from '../config.js';
import { UsageError } from '../exit-codes.js';
import { createLogger } from '@onionturn/server';
import { issueOptions, singleSecretFile, urisOf } from './credential-options.js';
import { errorText, listenOn } from '@onionturn/io';

interface ServeArgs {
  secretFile?: string | string[];
  secret?: string;
  ttl: number;
  jitter?: number;
  uri?: string[];
  listen: string;
  apiKey?: string;
  apiKeyFile?: string;
  rateLimit: number;
  labels: boolean;
  corsOrigin?: string;
  logLevel: string;
}

function apiKeys(args: ServeArgs, ctx: CliContext): string[] {
  if (args.apiKey !== undefined && args.apiKeyFile !== undefined) throw new UsageError('give either --api-key-file or --api-key, not both');
  if (args.apiKeyFile !== undefined)
    return [readSecretFile(args.apiKeyFile, ({ path }) => ctx.warn(`API key file ${path} is readable by others (chmod 600 ${path})`))];
  if (args.apiKey !== undefined) {
    if (args.apiKey.trim() === '') throw new UsageError('the API key is empty');
    if (givenOnCommandLine(ctx.rawArgv, 'api-key')) ctx.warn('--api-key shows the key to every user via ps; use --api-key-file or ONIONTURN_API_KEY');
    return [args.apiKey.trim()];
  }
  return [];
}

/** Resolves with the first SIGINT or SIGTERM, then stops listening for either. */
function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export function credentialsServeCommand(ctx: CliContext): CommandModule {
  return {
    command: 'serve',
    describe: 'serve credentials over HTTP: GET /?service=turn[&username=L] and GET /credentials (JSON, no-store)',
    builder: (y) =>
      issueOptions(y)
        .option('listen', { type: 'string', default: '127.0.0.1:8088', requiresArg: true, describe: 'HOST:PORT to listen on (port 0: any free port)' })
        .option('api-key-file', {
          type: 'string',
          requiresArg: true,
          describe: 'require this key (key=, X-API-Key or Authorization: Bearer) [env ONIONTURN_API_KEY_FILE]',
        })
        .option('api-key', { type: 'string', requiresArg: true, describe: 'the API key itself; prefer --api-key-file or env ONIONTURN_API_KEY' })
        .option('rate-limit', { type: 'number', default: 60, requiresArg: true, describe: 'requests per minute, all clients together (0: no limit)' })
        .option('labels', {
          type: 'boolean',
          default: true,
          describe: "honour the draft's username= parameter as a linkable label (--no-labels: random ids only)",
        })
        .option('cors-origin', { type: 'string', requiresArg: true, describe: 'Access-Control-Allow-Origin for browser apps on another origin' })
        .option('log-level', { choices: ['error', 'warn', 'info', 'debug'], default: 'info', describe: 'JSON log level (logs go to stderr)' })
        .example('$0 credentials serve --secret-file secret --uri turn:127.0.0.1:3478?transport=tcp', 'serve on 127.0.0.1:8088'),
    handler: async (argv) => {
      const args = argv as unknown as ServeArgs;
      const { secrets, warnings } = resolveSecrets({ secretFile: singleSecretFile(args.secretFile), secret: args.secret }, ctx.rawArgv);
      warnings.forEach(ctx.warn);
      const listen = parseListen(args.listen);
      const keys = apiKeys(args, ctx);
      const rateLimit = wholeNumber('rate-limit', args.rateLimit, { min: 0 });
      let handler;
      try {
        handler = createCredentialHandler({
          secret: secrets[0] ?? '',
          ttl: args.ttl,
          uris: urisOf(args.uri),
          apiKeys: keys,
          allowLabels: args.labels,
          rateLimit: rateLimit === 0 ? false : { perMinute: rateLimit },
          ...(args.jitter !== undefined ? { jitter: args.jitter } : {}),
          ...(args.corsOrigin !== undefined ? { corsOrigin: args.corsOrigin } : {}),
        });
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const logger = createLogger({ level: args.logLevel });
      if (!isLoopback(listen.host)) {
        logger.warn('credential endpoint listens beyond loopback over plain HTTP: put TLS or an onion service in front', { host: listen.host });
      }
      const server = createServer(handler);
      // Slow or idle clients must not hold connections open (slowloris).
      server.headersTimeout = 10_000;
      server.requestTimeout = 15_000;
      server.keepAliveTimeout = 5_000;
      server.maxHeadersCount = 50;
      await listenOn(server, { port: listen.port, host: listen.host }, (error) =>
        logger.error('credential endpoint listener error', { error: errorText(error) }),
      ).catch((error: unknown) => {
        throw new Error(`cannot listen on ${args.listen}: ${errorText(error as Error)}`);
      });
      const address = server.address() as AddressInfo;
      const shown = address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
      logger.info('credential endpoint listening', { listen: shown, ttl: args.ttl, apiKey: keys.length > 0, rateLimitPerMinute: rateLimit });
      const signal = await stopSignal();
      logger.info('credential endpoint stopping', { signal });
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
