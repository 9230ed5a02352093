// What a command needs from its surroundings, passed in rather than taken from globals so the
// commands stay testable and never write to the console behind main's back.

export interface CliContext {
  /** The arguments as typed (after `onionturn`), to tell flags from env/config values. */
  readonly rawArgv: readonly string[];
  /** Writes data (credentials, JSON) to stdout; adds no newline. */
  readonly out: (text: string) => void;
  /** Writes one human-readable line to stderr, prefixed `onionturn: warning: `. */
  readonly warn: (message: string) => void;
}
