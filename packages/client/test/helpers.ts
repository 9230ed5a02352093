// Shared by the client tests: a logger whose lines the test can read.
import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger, type Logger } from '../src/index.js';

export interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly [key: string]: unknown;
}

export function captureLogger(echo = process.env['ONIONTURN_TEST_LOGS'] === '1'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb): void {
      const line = JSON.parse(chunk.toString()) as LogLine;
      lines.push(line);
      if (echo) process.stderr.write(chunk);
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream })] });
  return { logger, lines };
}

export function messages(lines: readonly LogLine[]): string {
  return lines.map((l) => `${l.level}: ${l.message}`).join('\n');
}
