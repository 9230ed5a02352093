// The by-hand way of reaching a TURN server through Tor, as users do it today without onionturn: a
// local TCP forwarder (what `socat TCP-LISTEN:… SOCKS5-CONNECT:…` does) whose every connection
// becomes one SOCKS5 stream to host:port. Used by the benchmarks that compare against it.
import { createServer, type Socket } from 'node:net';
import { socks5Connect } from './socks5.js';

export interface SocksForwarderOptions {
  readonly socksPort: number;
  readonly host: string;
  readonly port: number;
  /**
   * 'connection' gives every connection a SOCKS username of its own, so tor puts each on its own
   * circuit (two browsers on two machines each have their own tor); 'none' sends no auth, so tor's
   * default isolation puts every connection from this forwarder on one circuit.
   */
  readonly isolation?: 'connection' | 'none';
}

export interface SocksForwarder {
  readonly port: number;
  close(): Promise<void>;
}

let forwarded = 0;

export async function startSocksForwarder(options: SocksForwarderOptions): Promise<SocksForwarder> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.setNoDelay(true);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    client.pause();
    const auth = options.isolation === 'connection' ? { username: `fwd-${process.pid}-${++forwarded}`, password: 'x' } : {};
    socks5Connect({ proxyPort: options.socksPort, host: options.host, port: options.port, ...auth, timeoutMs: 60_000 }).then(
      (up) => {
        sockets.add(up);
        up.setNoDelay(true);
        up.on('error', () => up.destroy());
        up.on('close', () => {
          sockets.delete(up);
          client.destroy();
        });
        client.on('close', () => up.destroy());
        client.pipe(up);
        up.pipe(client);
        client.resume();
      },
      () => client.destroy(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('forwarder: no TCP address');
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
