// `onionturn secret <file>` (and `onionturn credentials new-secret <file>`): a fresh shared secret.
import type { CommandModule } from 'yargs';
import type { CliContext } from '../cli-context.js';
import { positiveInteger } from '../config.js';
import { writeSecretFile } from '../secret-file.js';

export function newSecretCommand(ctx: CliContext, command = 'secret <file>'): CommandModule {
  return {
    command,
    describe: 'write a fresh random shared secret to <file> (mode 0600); the secret is not printed',
    builder: (y) =>
      y
        .positional('file', { type: 'string', describe: 'where to write the secret' })
        .option('force', { type: 'boolean', default: false, describe: 'replace <file> if it exists' })
        .option('bytes', { type: 'number', default: 32, requiresArg: true, describe: 'random bytes in the secret (16-1024), written as hex' }),
    handler: async (argv) => {
      const args = argv as unknown as { file: string; force: boolean; bytes: number };
      const bytes = positiveInteger('bytes', args.bytes);
      await writeSecretFile(args.file, { force: args.force, bytes });
      ctx.out(`wrote a new ${bytes * 8}-bit secret to ${args.file} (mode 0600)\n`);
    },
  };
}
