// JSON logs through winston. SafeLogging (as Tor's): usernames, client and peer addresses are
// scrubbed unless the operator asks for them while debugging.
import winston from 'winston';
import { scrub } from '@onionturn/io';

export { scrub };

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
      // winston filters levels deep inside its stream pipeline; skip the copy and the stream
      // write when the line would be dropped anyway (allocation events at --log-level warn).
      if (!w.isLevelEnabled(level)) return;
      w.log(level, message, scrub(fields, sensitive));
    };
  return { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
}
