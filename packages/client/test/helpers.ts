// Shared by the client tests: a logger whose lines the test can read, and a SOCKS5 server whose
// streams stall.
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
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

/**
 * SOCKS5 that answers the greeting and CONNECT, then reads nothing until resumed: a Tor stream that
 * stalls. `stream` is the accepted connection, paused; its close goes into `cleanups`.
 */
export async function stallingSocks(cleanups: (() => Promise<void> | void)[]): Promise<{ port: number; stream: Promise<Socket> }> {
  let give: (s: Socket) => void = () => {};
  const stream = new Promise<Socket>((r) => (give = r));
  const server = createServer((s) => {
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    let step: 'greet' | 'connect' = 'greet';
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      if (step === 'greet' && buf.length >= 2 && buf.length >= 2 + (buf[1] as number)) {
        buf = buf.subarray(2 + (buf[1] as number));
        step = 'connect';
        s.write(Buffer.from([5, 0])); // no authentication
      }
      // CONNECT to an IPv4 address: 10 bytes.
      if (step === 'connect' && buf.length >= 10) {
        s.removeListener('data', onData);
        s.pause();
        s.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
        if (buf.length > 10) s.unshift(buf.subarray(10));
        give(s);
      }
    };
    s.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as { port: number }).port, stream };
}
