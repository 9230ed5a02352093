// Configuration shared by all onionturn commands: flags, ONIONTURN_* environment variables
// (yargs .env) and a YAML or JSON `--config FILE`, in that order of precedence, plus the secret-file
// and listen-address parsing that the server and client commands reuse.
import { isMap, isScalar, parseDocument } from 'yaml';
import { readFileSync, statSync } from 'node:fs';
import { isLoopbackAddress, parseHostPort } from '@onionturn/io';
import { UsageError } from './exit-codes.js';
import { errorText } from '@onionturn/io';

export const ENV_PREFIX = 'ONIONTURN';

/**
 * Reads a YAML or JSON config file for yargs' `.config()`: keys are option names, in either spelling
 * (`secretFile` or `secret-file`). Throws UsageError so a bad file is an exit-2 one-liner.
 */
export function loadConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read config file ${path}: ${errorText(error)}`);
  }
  return parseConfigText(text, path);
}

/** A config file's text (read from `path`, whose name says YAML or JSON) as the option mapping; UsageError when it is not one. */
export function parseConfigText(text: string, path: string): Record<string, unknown> {
  // YAML for files named .yaml/.yml, JSON otherwise; one schema either way (yargs checks the keys).
  const yaml = /\.ya?ml$/i.test(path);
  const format = yaml ? 'YAML' : 'JSON';
  let parsed: unknown;
  try {
    parsed = yaml ? parseYamlConfig(text, path) : JSON.parse(text);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`config file ${path} is not valid ${format}: ${(error as Error).message.split('\n')[0]}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`config file ${path} must hold a ${format} mapping of option names to values`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * YAML with nothing ambiguous: the library's warnings (an anchor or alias ending in ':', a list or
 * mapping as a key) would otherwise go to process warnings, several lines each, and the file be
 * read in a way its author may not have meant; here they are the one-line usage error.
 */
function parseYamlConfig(text: string, path: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, logLevel: 'silent' });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw new UsageError(`config file ${path} is not valid YAML: ${problem.message.split('\n')[0]}`);
  if (isMap(doc.contents) && doc.contents.items.some((p) => !isScalar(p.key))) {
    throw new UsageError(`config file ${path}: a list or mapping where an option name should be; keys are option names such as listen or secret-file`);
  }
  return doc.toJS({ maxAliasCount: 0 });
}

export interface SecretFileWarning {
  readonly path: string;
  readonly mode: number;
}

/**
 * A secret file's trimmed contents. Missing, unreadable or empty files are UsageErrors.
 * `onLooseMode` hears about files readable by group or others (like ssh, we warn, not refuse).
 */
export function readSecretFile(path: string, onLooseMode?: (warning: SecretFileWarning) => void): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read secret file ${path}: ${errorText(error)}`);
  }
  const secret = text.trim();
  if (secret.length === 0) throw new UsageError(`secret file ${path} is empty`);
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) onLooseMode?.({ path, mode });
  return secret;
}

export interface SecretSources {
  /** --secret-file (repeatable: newest first). */
  readonly secretFile?: string | readonly string[] | undefined;
  /** --secret or ONIONTURN_SECRET (or `secret` in the config file). */
  readonly secret?: string | undefined;
}

export interface SecretResolution {
  /** Newest first; at least one, none empty. */
  readonly secrets: readonly string[];
  /** Warnings for the user (never containing a secret). */
  readonly warnings: readonly string[];
}

function asList(value: string | readonly string[] | undefined): readonly string[] {
  if (value === undefined) return [];
  return typeof value === 'string' ? [value] : value;
}

/** True when `--name` or `--name=...` was typed on the command line (as opposed to env or config). */
export function givenOnCommandLine(rawArgv: readonly string[], name: string): boolean {
  return rawArgv.some((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`));
}

/**
 * The secrets to use, from --secret-file(s) or from --secret / ONIONTURN_SECRET. Exactly one kind
 * must be given. A secret typed on the command line works but is warned about: it shows in `ps`.
 */
export function resolveSecrets(sources: SecretSources, rawArgv: readonly string[]): SecretResolution {
  const files = asList(sources.secretFile);
  const inline = sources.secret;
  const warnings: string[] = [];
  if (files.length > 0 && inline !== undefined) {
    throw new UsageError(`give either --secret-file or --secret/${ENV_PREFIX}_SECRET, not both`);
  }
  if (files.length > 0) {
    const secrets = files.map((file) =>
      readSecretFile(file, ({ path, mode }) =>
        warnings.push(`secret file ${path} has mode ${mode.toString(8).padStart(4, '0')}; others can read it (chmod 600 ${path})`),
      ),
    );
    return { secrets, warnings };
  }
  if (inline !== undefined) {
    const secret = String(inline).trim();
    if (secret.length === 0) throw new UsageError(`the secret given by --secret or ${ENV_PREFIX}_SECRET is empty`);
    if (givenOnCommandLine(rawArgv, 'secret')) warnings.push(`--secret shows the secret to every user via ps; use --secret-file or ${ENV_PREFIX}_SECRET`);
    return { secrets: [secret], warnings };
  }
  throw new UsageError(`no secret: give --secret-file FILE (or set ${ENV_PREFIX}_SECRET)`);
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses `host:port`, `[v6]:port` or a bare port (loopback). Port 0 asks the OS for a free one.
 * HOST:PORT syntax is the one parser's (`parseHostPort` of @onionturn/io), so every command reads
 * listen addresses alike; names are allowed here (the server and endpoints may bind one).
 */
export function parseListen(value: string): ListenAddress {
  const r = parseHostPort(/^\d+$/.test(value) ? `127.0.0.1:${value}` : value, true);
  if (!r.ok) throw new UsageError(`cannot parse listen address '${value}': use HOST:PORT, e.g. 127.0.0.1:8088 or [::1]:8088 (${r.reason})`);
  return r.value;
}

/**
 * True for addresses only this machine can reach (127/8, ::1, IPv4-mapped 127/8); anything else
 * gets a warning from commands that listen. The client's check: names such as `localhost` are
 * not trusted, since they resolve to whatever the resolver says.
 */
export const isLoopback: (host: string) => boolean = isLoopbackAddress;

/**
 * Parses a whole number given as a flag, env or config value, from `min` (default 1) up to `max`;
 * anything else is one line naming the flag and the range (`note` says what a special value means).
 */
export function wholeNumber(name: string, value: unknown, range: { min?: number; max?: number; note?: string } = {}): number {
  const { min = 1, max } = range;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
    const allowed = max === undefined ? `>= ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${name} must be a whole number ${allowed}${range.note === undefined ? '' : ` (${range.note})`}, got '${String(value)}'`);
  }
  return n;
}

/** A positive whole number of seconds (or other unit). */
export function positiveInteger(name: string, value: unknown): number {
  return wholeNumber(name, value);
}

/** secretFile / secret-file → secret-file. */
function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Option names (kebab-case) that ONIONTURN_* variables in `env` set, e.g. ONIONTURN_SECRET_FILE → secret-file. */
export function envOptionNames(env: NodeJS.ProcessEnv): Set<string> {
  const prefix = `${ENV_PREFIX}_`;
  return new Set(
    Object.keys(env)
      .filter((name) => name.startsWith(prefix) && name.length > prefix.length)
      .map((name) => name.slice(prefix.length).toLowerCase().replace(/_/g, '-')),
  );
}

interface OptionsView {
  getOptions?: () => { key?: Record<string, unknown>; alias?: Record<string, readonly string[]> };
}

/**
 * yargs middleware (run before validation) that drops ONIONTURN_* values the running command has
 * no option for. One environment (a container, a systemd unit) usually serves several commands,
 * so ONIONTURN_LISTEN for the server must not make `onionturn credentials` fail in strict mode;
 * unknown flags and config-file keys still do.
 */
export function ignoreForeignEnv(env: NodeJS.ProcessEnv): (argv: Record<string, unknown>, ...rest: unknown[]) => void {
  const fromEnv = envOptionNames(env);
  // yargs passes its (command-scoped) instance as the second argument; its typings omit it.
  return (argv, ...rest) => {
    const options = (rest[0] as OptionsView | undefined)?.getOptions?.() ?? {};
    const known = new Set<string>();
    for (const key of Object.keys(options.key ?? {})) known.add(kebab(key));
    for (const [key, aliases] of Object.entries(options.alias ?? {})) [key, ...aliases].forEach((a) => known.add(kebab(a)));
    for (const key of Object.keys(argv)) {
      if (key === '_' || key === '$0') continue;
      const name = kebab(key);
      if (fromEnv.has(name) && !known.has(name)) Reflect.deleteProperty(argv, key);
    }
  };
}
