// JSON logs (winston). SafeLogging by default: the shim logs through a scrubbing logger (the
// server's key-based scrub, from @onionturn/io) that replaces app addresses and usernames unless
// `detail` is on; flows are named by a counter.
import winston from 'winston';
import { scrub } from '@onionturn/io';

export type Logger = winston.Logger;

export interface LoggerOptions {
  readonly level?: string;
  /** Extra transports (tests capture lines with a Stream transport). */
  readonly transports?: winston.transport[];
  readonly silent?: boolean;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  return winston.createLogger({
    level: opts.level ?? 'info',
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { component: 'client' },
    transports: opts.transports ?? [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
    silent: opts.silent ?? false,
  });
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
type Fields = Readonly<Record<string, unknown>>;

/** What the shim's parts log through: fields are scrubbed by key, never checked at the call site. */
export interface ScrubbingLogger {
  log(level: LogLevel, message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
}

/** Wraps `logger` so sensitive fields are scrubbed unless `detail`. */
export function scrubbing(logger: Logger, detail: boolean): ScrubbingLogger {
  const log = (level: LogLevel, message: string, fields: Fields = {}): void => {
    // Skip the copy when the line would be dropped anyway.
    if (!logger.isLevelEnabled(level)) return;
    logger.log(level, message, scrub(fields, detail));
  };
  return {
    log,
    error: (m, f) => log('error', m, f),
    warn: (m, f) => log('warn', m, f),
    info: (m, f) => log('info', m, f),
    debug: (m, f) => log('debug', m, f),
  };
}
