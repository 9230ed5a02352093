// A TCP echo server on loopback: the network's readiness probe proves a full round trip
// (client -> relays -> exit -> here -> back) instead of trusting "Bootstrapped 100%".
import { createServer, type Server, type Socket } from 'node:net';

export interface EchoServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts an echo server on host (default 127.0.0.1) and a free port (or the given one). */
export async function startEchoServer(host = '127.0.0.1', port = 0): Promise<EchoServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A peer reset is normal here (probes hang up abruptly); it must not crash the process.
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('echo server has no address');
  let closed: Promise<void> | undefined;
  return {
    host,
    port: address.port,
    close: (): Promise<void> =>
      (closed ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      })),
  };
}
