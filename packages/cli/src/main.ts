// The onionturn command line: yargs wiring only. Each command lives in src/commands/; shared
// configuration (flags, ONIONTURN_* env, --config JSON) and exit codes in config.ts and exit-codes.ts.
import yargs from 'yargs';
import type { CliContext } from './cli-context.js';
import { clientCommand } from './commands/client.js';
import { credentialsCommand } from './commands/credentials.js';
import { probeCommand } from './commands/probe.js';
import { newSecretCommand } from './commands/secret.js';
import { serverCommand } from './commands/server.js';
import { udpGatewayCommand } from './commands/udp-gateway.js';
import { ENV_PREFIX, ignoreForeignEnv, loadConfigFile } from './config.js';
import { ExitCode, UsageError, exitCodeFor, oneLine } from './exit-codes.js';

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const ctx: CliContext = {
    rawArgv: argv,
    out: io.stdout,
    warn: (message) => io.stderr(`onionturn: warning: ${oneLine(message)}\n`),
  };
  const parser = yargs([...argv])
    .scriptName('onionturn')
    .usage(
      '$0 <command> [options]\n\nTURN-over-Tor bridge. Options come from flags, ONIONTURN_* environment variables\n(e.g. ONIONTURN_SECRET_FILE for --secret-file) and --config FILE (JSON), in that order.',
    )
    .env(ENV_PREFIX)
    .middleware(ignoreForeignEnv(process.env), true)
    .config('config', 'YAML (.yaml/.yml) or JSON file of option names to values, e.g. secretFile: /etc/onionturn/secret', loadConfigFile)
    .command(credentialsCommand(ctx))
    .command(clientCommand(ctx))
    .command(newSecretCommand(ctx))
    .command(serverCommand(ctx))
    .command(probeCommand({ out: ctx.out }))
    .command(udpGatewayCommand())
    .demandCommand(1, 'no command given (try onionturn --help)')
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    .version('0.1.0')
    .wrap(Math.min(100, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((message, error) => {
      // Never let yargs print the whole help after a mistake: one line, exit 2.
      throw error ?? new UsageError(message);
    });
  try {
    await parser.parseAsync();
    return ExitCode.ok;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`onionturn: ${oneLine(message)}\n`);
    return exitCodeFor(error);
  }
}
