// `onionturn credentials`: print one REST credential; `credentials serve` and
// `credentials new-secret` are its subcommands.
import type { CommandModule } from 'yargs';
import { generate } from '@onionturn/credentials';
import type { CliContext } from '../cli-context.js';
import { resolveSecrets } from '../config.js';
import { FORMATS, formatCredential, type Format } from '../credential-output.js';
import { UsageError } from '../exit-codes.js';
import { issueOptions, singleSecretFile, urisOf } from './credential-options.js';
import { credentialsServeCommand } from './credentials-serve.js';
import { newSecretCommand } from './secret.js';

export function credentialsCommand(ctx: CliContext): CommandModule {
  return {
    command: 'credentials',
    describe: 'print a time-limited TURN credential (REST style, coturn use-auth-secret compatible)',
    builder: (y) =>
      issueOptions(y)
        .command(credentialsServeCommand(ctx))
        .command(newSecretCommand(ctx, 'new-secret <file>'))
        // Printing options only: not inherited by `serve` and `new-secret`.
        .option('user', {
          type: 'string',
          global: false,
          requiresArg: true,
          describe: 'label to use instead of a random id; it LINKS all credentials issued with it',
        })
        .option('format', {
          choices: FORMATS,
          global: false,
          default: 'json' as Format,
          describe: 'json: {username,password,ttl,uris}; ice: an RTCIceServer; env: TURN_* shell assignments',
        })
        .example('$0 credentials --secret-file /etc/onionturn/secret --uri turn:127.0.0.1:3478?transport=tcp', 'print one credential as JSON')
        .example('$0 credentials --format ice --uri turn:exit.example:3478', 'print an RTCIceServer object'),
    handler: (argv) => {
      const args = argv as unknown as {
        secretFile?: string | string[];
        secret?: string;
        ttl: number;
        jitter?: number;
        uri?: string[];
        user?: string;
        format: Format;
      };
      const { secrets, warnings } = resolveSecrets({ secretFile: singleSecretFile(args.secretFile), secret: args.secret }, ctx.rawArgv);
      warnings.forEach(ctx.warn);
      const uris = urisOf(args.uri);
      if (args.format === 'ice' && uris.length === 0) throw new UsageError('--format ice needs at least one --uri');
      const made = generate({
        secret: secrets[0] ?? '',
        ttl: args.ttl,
        ...(args.jitter !== undefined ? { jitter: args.jitter } : {}),
        ...(args.user !== undefined ? { label: args.user } : {}),
      });
      if (!made.ok) throw new UsageError(made.error.code === 'invalid-label' ? `--user: ${made.error.reason}` : made.error.reason);
      ctx.out(formatCredential(made.value, uris, args.format));
    },
  };
}
