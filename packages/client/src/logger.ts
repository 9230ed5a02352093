// JSON logs (winston). SafeLogging by default: no app addresses, usernames or credentials unless
// `detail` is on; flows are named by a counter.
import winston from 'winston';

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
