// SOCKS5 parts for tests. `startMicrosocks` runs Debian's microsocks (an independent SOCKS5
// server). `SocksRecorder` is a tiny in-process SOCKS5 relay that records what each client
// asked for (auth, target) — microsocks cannot show the credentials — and can refuse with a
// chosen reply code to play Tor's failures. It connects only to loopback targets and resolves
// no names: hostnames are looked up in a map the test gives.
import { createServer, connect, isIP, type Server, type Socket } from 'node:net';
import { TOOLS, requireTool } from '@onionturn/lab';
import type { ProcessGroup } from '@onionturn/lab';
import { waitFor, type Started } from '@onionturn/lab';
import { freePort } from '@onionturn/lab';
import { canConnect } from '@onionturn/lab';

export async function startMicrosocks(group: ProcessGroup, auth?: { user: string; password: string }): Promise<{ port: number; process: Started }> {
  const bin = requireTool(TOOLS.microsocks);
  const port = await freePort();
  const proc = group.spawn('microsocks', bin, ['-i', '127.0.0.1', '-p', String(port), ...(auth ? ['-u', auth.user, '-P', auth.password] : [])]);
  await waitFor(
    `microsocks on 127.0.0.1:${port}`,
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`microsocks exited: ${proc.output()}`);
      return canConnect('127.0.0.1', port);
    },
    5000,
  );
  return { port, process: proc };
}

export interface SocksRequestRecord {
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** As sent: an IP literal or a hostname (never resolved by the client). */
  readonly host: string;
  readonly addressType: 'ipv4' | 'ipv6' | 'domain';
  readonly port: number;
  /** The client side socket of this relayed stream (destroy it to play an upstream close). */
  readonly streams: Socket[];
  /** What the client sent on the stream after the request, as relayed (its first RECORD_LIMIT bytes). */
  readonly sent: Buffer[];
  /** What the target sent back on the stream (its first RECORD_LIMIT bytes). */
  readonly received: Buffer[];
}

/** Bytes of each direction of a stream SocksRecorder keeps per request. */
const RECORD_LIMIT = 64 * 1024;

/** A 'data' listener keeping the first RECORD_LIMIT bytes in `into`. */
function recordInto(into: Buffer[]): (b: Buffer) => void {
  let kept = 0;
  return (b) => {
    if (kept >= RECORD_LIMIT) return;
    into.push(Buffer.from(b.subarray(0, RECORD_LIMIT - kept)));
    kept += b.length;
  };
}

export interface SocksRecorderOptions {
  /** Hostname -> loopback IP, the test's stand-in for Tor's resolution at the exit. */
  readonly hosts?: Readonly<Record<string, string>>;
  /** A reply code to send instead of connecting (e.g. 0x05 refused, 0xf0 onion not found). */
  readonly replyFor?: (req: SocksRequestRecord) => number | undefined;
}

export class SocksRecorder {
  readonly requests: SocksRequestRecord[] = [];
  readonly #server: Server;
  readonly #opts: SocksRecorderOptions;
  readonly #sockets = new Set<Socket>();
  #port = 0;

  private constructor(opts: SocksRecorderOptions) {
    this.#opts = opts;
    this.#server = createServer((s) => this.#handle(s));
  }

  static async start(opts: SocksRecorderOptions = {}): Promise<SocksRecorder> {
    const r = new SocksRecorder(opts);
    await new Promise<void>((resolve) => r.#server.listen(0, '127.0.0.1', () => resolve()));
    r.#port = (r.#server.address() as { port: number }).port;
    return r;
  }

  get port(): number {
    return this.#port;
  }

  /** Relayed connections still open (both ends counted once). */
  get open(): number {
    return this.#sockets.size;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(client: Socket): void {
    this.#sockets.add(client);
    client.on('close', () => this.#sockets.delete(client));
    client.on('error', () => client.destroy());
    let buf = Buffer.alloc(0);
    let step: 'greet' | 'auth' | 'request' = 'greet';
    let username: string | undefined;
    let password: string | undefined;
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (step === 'greet') {
          if (buf.length < 2 || buf.length < 2 + (buf[1] as number)) return;
          const methods = [...buf.subarray(2, 2 + (buf[1] as number))];
          buf = buf.subarray(2 + (buf[1] as number));
          if (methods.includes(0x02)) {
            client.write(Buffer.from([5, 0x02]));
            step = 'auth';
          } else {
            client.write(Buffer.from([5, 0x00]));
            step = 'request';
          }
        } else if (step === 'auth') {
          if (buf.length < 2) return;
          const ulen = buf[1] as number;
          if (buf.length < 3 + ulen) return;
          const plen = buf[2 + ulen] as number;
          if (buf.length < 3 + ulen + plen) return;
          username = buf.toString('utf8', 2, 2 + ulen);
          password = buf.toString('utf8', 3 + ulen, 3 + ulen + plen);
          buf = buf.subarray(3 + ulen + plen);
          client.write(Buffer.from([1, 0]));
          step = 'request';
        } else {
          if (buf.length < 5) return;
          const atyp = buf[3];
          const need = atyp === 1 ? 10 : atyp === 4 ? 22 : 7 + (buf[4] as number);
          if (buf.length < need) return;
          let host: string;
          let addressType: SocksRequestRecord['addressType'];
          if (atyp === 1) {
            host = [...buf.subarray(4, 8)].join('.');
            addressType = 'ipv4';
          } else if (atyp === 4) {
            const parts: string[] = [];
            for (let i = 0; i < 8; i++) parts.push(buf.readUInt16BE(4 + i * 2).toString(16));
            host = parts
              .join(':')
              .replace(/^(0:)+/, '::')
              .replace(/:(0:)+/, '::');
            addressType = 'ipv6';
          } else {
            host = buf.toString('utf8', 5, 5 + (buf[4] as number));
            addressType = 'domain';
          }
          const port = buf.readUInt16BE(need - 2);
          const rest = buf.subarray(need);
          if (buf[1] !== 0x01) {
            // Only CONNECT, as a plain SOCKS5 server: anything else (Tor's RESOLVE) is "command not supported".
            client.end(Buffer.from([5, 0x07, 0, 1, 0, 0, 0, 0, 0, 0]));
            client.removeListener('data', onData);
            return;
          }
          client.removeListener('data', onData);
          client.pause();
          const rec: SocksRequestRecord = { username, password, host, addressType, port, streams: [], sent: [], received: [] };
          this.requests.push(rec);
          this.#connect(client, rec, rest);
          return;
        }
      }
    };
    client.on('data', onData);
  }

  #connect(client: Socket, rec: SocksRequestRecord, rest: Buffer): void {
    const reply = (code: number): void => {
      client.write(Buffer.from([5, code, 0, 1, 127, 0, 0, 1, 0, 0]));
    };
    const forced = this.#opts.replyFor?.(rec);
    if (forced !== undefined) {
      reply(forced);
      client.end();
      return;
    }
    const ip = rec.addressType === 'domain' ? this.#opts.hosts?.[rec.host] : rec.host;
    if (ip === undefined) {
      reply(0x04);
      client.end();
      return;
    }
    if (!(isIP(ip) === 4 ? ip.startsWith('127.') : ip === '::1')) {
      reply(0x02); // loopback only, whatever the test asked
      client.end();
      return;
    }
    const target = connect({ host: ip, port: rec.port });
    this.#sockets.add(target);
    target.on('close', () => {
      this.#sockets.delete(target);
      client.end();
    });
    client.on('close', () => target.destroy());
    let connected = false;
    rec.streams.push(client);
    target.once('connect', () => {
      connected = true;
      reply(0x00);
      const keep = recordInto(rec.sent);
      if (rest.length > 0) {
        keep(rest);
        target.write(rest);
      }
      client.on('data', keep);
      target.on('data', recordInto(rec.received));
      client.pipe(target);
      target.pipe(client);
      client.resume();
    });
    target.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) reply(err.code === 'ECONNREFUSED' ? 0x05 : 0x01);
      client.end();
    });
  }
}
