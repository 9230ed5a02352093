// JSON logs through winston. SafeLogging (as Tor's): usernames, client and peer addresses are
// scrubbed unless the operator asks for them while debugging.
import winston from 'winston';

const SENSITIVE_KEYS: ReadonlySet<string> = new Set(['username', 'client', 'peer', 'address', 'remote']);
const SCRUBBED = '[scrubbed]';

export interface Logger {
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
  debug(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

export interface LoggerOptions {
  readonly level?: string;
  readonly sensitive?: boolean;
  /** Where lines go; stderr by default. */
  readonly stream?: NodeJS.WritableStream;
}

export function scrub(fields: Readonly<Record<string, unknown>>, sensitive: boolean): Record<string, unknown> {
  if (sensitive) return { ...fields };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = SENSITIVE_KEYS.has(k) ? SCRUBBED : v;
  return out;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] });
  const w = winston.createLogger({
    level: options.level ?? 'info',
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [transport],
  });
  const sensitive = options.sensitive === true;
  const at =
    (level: 'info' | 'warn' | 'error' | 'debug') =>
    (message: string, fields: Readonly<Record<string, unknown>> = {}): void => {
      w.log(level, message, scrub(fields, sensitive));
    };
  return { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
}
