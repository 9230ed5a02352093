// The onionturn command line: yargs wiring only; each command lives in src/commands/.
// (Interim main until the shared CLI structure lands: only `probe` is built so far.)
import yargs from 'yargs';
import { probeCommand } from './commands/probe.js';

export async function main(argv: readonly string[]): Promise<number> {
  const parser = yargs([...argv])
    .scriptName('onionturn')
    .env('ONIONTURN')
    .command(probeCommand({ out: (text) => process.stdout.write(text) }))
    .demandCommand(1, 'no command given (try onionturn --help)')
    .strict()
    .help()
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new Error(message);
    });
  try {
    await parser.parseAsync();
    return 0;
  } catch (error) {
    process.stderr.write(`onionturn: ${(error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ')}\n`);
    return 1;
  }
}
