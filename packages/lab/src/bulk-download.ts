// Competing traffic for the congested lab profile: a TCP source on 127.0.0.1 that sends as fast
// as its reader takes, and a reader that downloads from it through the Tor network's SOCKS port
// (its own circuit) and throws the bytes away, reconnecting until stop(). With a congested relay
// the network gives it a tor client of its own whose circuits cross that relay (tor-network.ts).
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { socks5Connect } from './socks5.js';
import { sleep } from './processes.js';

export interface BulkDownload {
  /** Bytes received by the downloader so far. */
  readonly received: () => number;
  stop(): Promise<void>;
}

export async function startBulkDownload(options: { readonly socksPort: number; readonly socksHost?: string }): Promise<BulkDownload> {
  const block = randomBytes(64 * 1024);
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    const pump = (): void => {
      while (!s.destroyed && s.write(block));
    };
    s.on('drain', pump);
    pump();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  let received = 0;
  let stopped = false;
  let current: Socket | undefined;
  const loop = (async (): Promise<void> => {
    while (!stopped) {
      try {
        const s = await socks5Connect({
          proxyHost: options.socksHost ?? '127.0.0.1',
          proxyPort: options.socksPort,
          host: '127.0.0.1',
          port,
          timeoutMs: 30_000,
          username: 'bulk-download',
          password: 'x',
        });
        current = s;
        if (stopped) s.destroy();
        await new Promise<void>((resolve) => {
          s.on('data', (chunk: Buffer) => (received += chunk.length));
          s.on('error', () => resolve());
          s.on('close', () => resolve());
        });
      } catch {
        // retry below
      }
      if (!stopped) await sleep(500);
    }
  })();
  return {
    received: () => received,
    stop: async () => {
      stopped = true;
      current?.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await loop;
    },
  };
}
