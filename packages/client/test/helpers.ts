// Shared by the client tests: a logger whose lines the test can read, and a SOCKS5 server whose
// streams stall.
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
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
 * The server side of a SOCKS5 greeting (no auth) and CONNECT to an IPv4 address (10 bytes); then
 * the socket is paused and `connected` gets the target and what followed the request.
 */
function acceptSocks5Connect(s: Socket, connected: (target: { host: string; port: number }, rest: Buffer) => void): void {
  let buf = Buffer.alloc(0);
  let step: 'greet' | 'connect' = 'greet';
  const onData = (c: Buffer): void => {
    buf = Buffer.concat([buf, c]);
    if (step === 'greet' && buf.length >= 2 && buf.length >= 2 + (buf[1] as number)) {
      buf = buf.subarray(2 + (buf[1] as number));
      step = 'connect';
      s.write(Buffer.from([5, 0])); // no authentication
    }
    if (step === 'connect' && buf.length >= 10) {
      s.removeListener('data', onData);
      s.pause();
      connected({ host: [...buf.subarray(4, 8)].join('.'), port: buf.readUInt16BE(8) }, buf.subarray(10));
    }
  };
  s.on('data', onData);
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
    acceptSocks5Connect(s, (_target, rest) => {
      s.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
      if (rest.length > 0) s.unshift(rest);
      give(s);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as { port: number }).port, stream };
}

/**
 * SOCKS5 (no auth, CONNECT to an IPv4 address) that forwards to the target through a bottleneck
 * of `bytesPerSecond` each way, released every 10 ms, with a queue as deep as need be: a Tor path
 * narrower than what is sent, whose backlog sits in the path (as in tor's circuit queues), not
 * in the sender. `queued()` says how many bytes wait in it now.
 */
export async function shapingSocks(cleanups: (() => Promise<void> | void)[], bytesPerSecond: number): Promise<{ port: number; queued(): number }> {
  const pipes: { queued: () => number }[] = [];
  const sockets = new Set<Socket>();
  const shape = (from: Socket, to: Socket): { queued: () => number; stop: () => void } => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let credit = 0;
    let last = performance.now();
    from.on('data', (c: Buffer) => {
      chunks.push(c);
      bytes += c.length;
    });
    const timer = setInterval(() => {
      const now = performance.now();
      credit = Math.min(credit + ((now - last) * bytesPerSecond) / 1000, bytesPerSecond / 20);
      last = now;
      while (chunks.length > 0 && credit > 0) {
        const c = chunks[0] as Buffer;
        const n = Math.min(c.length, Math.ceil(credit));
        to.write(c.subarray(0, n));
        credit -= n;
        bytes -= n;
        if (n === c.length) chunks.shift();
        else chunks[0] = c.subarray(n);
      }
      if (chunks.length === 0) credit = Math.min(credit, 0);
    }, 10);
    return { queued: () => bytes, stop: () => clearInterval(timer) };
  };
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    acceptSocks5Connect(s, ({ host, port }, rest) => {
      const target = connect({ host, port }, () => {
        target.setNoDelay(true);
        s.setNoDelay(true);
        s.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
        const up = shape(s, target);
        const down = shape(target, s);
        pipes.push(up, down);
        if (rest.length > 0) s.unshift(rest);
        s.resume();
        const end = (): void => {
          up.stop();
          down.stop();
          s.destroy();
          target.destroy();
        };
        s.on('close', end);
        target.on('close', end);
      });
      sockets.add(target);
      target.on('error', () => s.destroy());
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { port: (server.address() as { port: number }).port, queued: () => pipes.reduce((n, p) => n + p.queued(), 0) };
}
