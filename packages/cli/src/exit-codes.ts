// Exit codes shared by every onionturn command. 2 follows the Unix convention for usage errors
// (bad flags, missing or empty secret, unreadable config) so scripts can tell them apart.

export const ExitCode = {
  ok: 0,
  /** Something failed at run time (a port in use, a peer gone). */
  failure: 1,
  /** The command line, environment or config file is wrong: nothing was done. */
  usage: 2,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Thrown from command handlers for configuration mistakes; main prints `onionturn: <message>` and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Which exit code an error escaping a command stands for. */
export function exitCodeFor(error: unknown): ExitCode {
  // yargs' own validation and config-file errors are YErrors.
  if (error instanceof UsageError || (error instanceof Error && error.name === 'YError')) return ExitCode.usage;
  return ExitCode.failure;
}
