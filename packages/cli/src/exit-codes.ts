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

/**
 * An error or warning as the CLI prints it: one line, whatever the error (scripts and people both
 * read the first line only), and no control characters. Messages quote what the user gave (a flag,
 * a config value), which may hold a carriage return that overwrites the line on a terminal, or
 * escape sequences: those are shown escaped (\r, \u001b).
 */
export function oneLine(message: string): string {
  return (
    message
      .replace(/\s*\n\s*/g, ' ')
      .trim()
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) =>
        c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
      )
  );
}
