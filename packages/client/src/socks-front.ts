// The SOCKS5 front end (--socks-listen): UDP ASSOCIATE only (RFC 1928 §7). Per control
// connection one UDP relay socket on the loopback (its address is in the reply) and one
// DatagramAssociation; the association lives as long as the control connection.
// Source rule: datagrams are taken only from DST.ADDR of the request when it is not all zeros,
// else from the control connection's own IP; and only from DST.PORT when it is not 0, else from
// the port of the first datagram from that IP. Anything else is dropped and counted.
// CONNECT and BIND get 0x07 (apps use Tor's own SOCKS port for streams).
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { errorCode } from '@onionturn/io';
import { DatagramAssociation, type DatagramContext } from './datagram-association.js';
import { isLoopbackAddress, type HostPort } from './endpoints.js';
import { ipOnlyLookup } from './ip-only-lookup.js';
import { AuthMethod, Reply, type SocksAuth } from './socks5-codec.js';
import {
  AUTH_SUCCESS,
  SocksCommand,
  chooseMethod,
  encodeAuthStatus,
  encodeMethodChoice,
  encodeReply,
  encodeUdpHeader,
  parseGreeting,
  parseRequest,
  parseUdpDatagram,
  parseUserPass,
  type SocksDestination,
} from './socks5-server-codec.js';

/** A control connection that has not finished its request within this long is closed. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Control connections at once (each association holds one; the flow limit bounds those). */
export const MAX_CONTROL_CONNECTIONS = 512;
/** Bytes of a handshake held at most (a greeting, auth and request fit in ~800). */
const MAX_HANDSHAKE_BYTES = 1024;

/** Maps the app's SOCKS username/password to the Tor isolation of its streams (as IsolateSOCKSAuth). */
export class SocksIsolation {
  /** Per run: the credentials Tor sees say nothing about the app's. */
  readonly #salt = randomBytes(16);

  of(app: SocksAuth): SocksAuth {
    const h = createHash('sha256').update(this.#salt).update(app.username).update('\0').update(app.password).digest('hex');
    return { username: `onionturn-socks-${h.slice(0, 16)}`, password: h.slice(16, 40) };
  }
}

export class SocksFront {
  readonly #ctx: DatagramContext;
  readonly #listen: HostPort;
  readonly #iso = new SocksIsolation();
  readonly #conns = new Set<Socket>();
  #server: Server | undefined;

  constructor(ctx: DatagramContext, listen: HostPort) {
    if (!isLoopbackAddress(listen.host))
      throw new Error(`refusing --socks-listen ${listen.host}: not a loopback address (the front end serves this machine only)`);
    this.#ctx = ctx;
    this.#listen = listen;
  }

  get address(): HostPort {
    const a = this.#server?.address();
    if (!a || typeof a === 'string') throw new Error('SOCKS front end is not listening');
    return { host: a.address, port: a.port };
  }

  async start(): Promise<HostPort> {
    const server = createServer((sock) => this.#onConnection(sock));
    server.maxConnections = MAX_CONTROL_CONNECTIONS;
    server.listen({ host: this.#listen.host, port: this.#listen.port, exclusive: true });
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e as Error))]);
    server.on('error', (err) => this.#ctx.logger.error(`SOCKS listener error: ${errorCode(err)}`));
    this.#server = server;
    return this.address;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const c of this.#conns) c.destroy();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  #onConnection(sock: Socket): void {
    this.#conns.add(sock);
    sock.on('close', () => this.#conns.delete(sock));
    sock.on('error', () => {});
    new ControlConnection(this.#ctx, this.#iso, sock).start();
  }
}

type Step = 'greeting' | 'auth' | 'request' | 'associated' | 'closed';

class ControlConnection {
  readonly #ctx: DatagramContext;
  readonly #iso: SocksIsolation;
  readonly #sock: Socket;
  #step: Step = 'greeting';
  #buf = Buffer.alloc(0);
  #appAuth: SocksAuth | undefined;
  #udp: UdpSocket | undefined;
  #assoc: DatagramAssociation | undefined;
  /** The one source datagrams are taken from (port 0 until learnt). */
  #srcAddress = '';
  #srcPort = 0;
  readonly #timer: { cancel(): void };

  constructor(ctx: DatagramContext, iso: SocksIsolation, sock: Socket) {
    this.#ctx = ctx;
    this.#iso = iso;
    this.#sock = sock;
    this.#timer = ctx.clock.after(HANDSHAKE_TIMEOUT_MS, () => {
      if (this.#step !== 'associated') this.#refuse('no complete SOCKS request in time');
    });
  }

  start(): void {
    this.#sock.on('data', (c: Buffer) => this.#onData(c));
    this.#sock.on('close', () => this.#end('control connection closed'));
    this.#sock.on('end', () => this.#end('control connection closed'));
  }

  #refuse(reason: string, reply?: Buffer): void {
    this.#ctx.stats.socksRefused++;
    this.#ctx.logger.debug(`SOCKS connection refused: ${reason}`);
    this.#step = 'closed';
    this.#timer.cancel();
    if (reply) this.#sock.end(reply);
    else this.#sock.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#step === 'associated' || this.#step === 'closed') return; // nothing more is said on it
    this.#buf = Buffer.concat([this.#buf, chunk]);
    if (this.#buf.length > MAX_HANDSHAKE_BYTES) return this.#refuse('handshake too long');
    for (;;) {
      if (this.#step === 'greeting') {
        const g = parseGreeting(this.#buf);
        if (g.kind === 'need') return;
        if (g.kind === 'bad') return this.#refuse(g.reason);
        this.#buf = this.#buf.subarray(g.length);
        const m = chooseMethod(g.value);
        if (m === AuthMethod.NoAcceptable) return this.#refuse('no acceptable authentication method', encodeMethodChoice(AuthMethod.NoAcceptable));
        this.#sock.write(encodeMethodChoice(m));
        this.#step = m === AuthMethod.UserPass ? 'auth' : 'request';
      } else if (this.#step === 'auth') {
        const a = parseUserPass(this.#buf);
        if (a.kind === 'need') return;
        if (a.kind === 'bad') return this.#refuse(a.reason);
        this.#buf = this.#buf.subarray(a.length);
        // Any username/password is accepted: it chooses the isolation, it does not guard anything.
        this.#appAuth = a.value;
        this.#sock.write(encodeAuthStatus(AUTH_SUCCESS));
        this.#step = 'request';
      } else if (this.#step === 'request') {
        const r = parseRequest(this.#buf);
        if (r.kind === 'need') return;
        if (r.kind === 'bad-address-type') return this.#refuse('request with an unknown address type', encodeReply(Reply.AddressTypeNotSupported));
        if (r.kind === 'bad') return this.#refuse(r.reason, encodeReply(Reply.GeneralFailure));
        this.#buf = Buffer.alloc(0);
        if (r.value.command !== SocksCommand.UdpAssociate) {
          return this.#refuse("CONNECT/BIND are not served here (use tor's SocksPort)", encodeReply(Reply.CommandNotSupported));
        }
        this.#step = 'associated';
        void this.#associate(r.value.destination);
        return;
      } else return;
    }
  }

  async #associate(dst: SocksDestination): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.table.full) {
      ctx.stats.flowLimitRefused++;
      return this.#refuse('flow limit reached', encodeReply(Reply.GeneralFailure));
    }
    const local = this.#sock.localAddress ?? '127.0.0.1';
    const v6 = isIP(local) === 6 && !local.startsWith('::ffff:');
    const host = v6 ? '::1' : '127.0.0.1';
    const udp = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6, lookup: ipOnlyLookup });
    try {
      const listening = once(udp, 'listening');
      udp.bind({ address: host, port: 0, exclusive: true });
      await Promise.race([listening, once(udp, 'error').then(([e]) => Promise.reject(e as Error))]);
    } catch (e) {
      udp.close();
      return this.#refuse(`cannot bind a UDP relay socket: ${errorCode(e as Error)}`, encodeReply(Reply.GeneralFailure));
    }
    if (this.#step === 'closed') {
      udp.close();
      return;
    }
    this.#timer.cancel();
    udp.on('error', (err) => ctx.logger.debug(`SOCKS UDP relay error: ${errorCode(err)}`));
    this.#udp = udp;
    // The source rule (see the file's head): DST.ADDR/PORT when given, else the connection's IP.
    const given = dst.address.kind === 'ip' && !/^(0\.0\.0\.0|::)$/.test(dst.address.host) ? dst.address.host : undefined;
    this.#srcAddress = normalize(given ?? this.#sock.remoteAddress ?? '');
    this.#srcPort = dst.port;
    const auth = this.#appAuth ? this.#iso.of(this.#appAuth) : ctx.table.isolation.next();
    const assoc = new DatagramAssociation(ctx, {
      kind: 'socks-udp',
      auth,
      takeHeld: this.#appAuth === undefined,
      deliver: (from, data) => {
        if (this.#srcPort === 0 || !this.#udp) return;
        const header = encodeUdpHeader(from.host, from.port);
        this.#udp.send([header, data], this.#srcPort, this.#srcAddress);
      },
      onClosed: () => this.#end('association closed'),
    });
    this.#assoc = assoc;
    assoc.start();
    udp.on('message', (msg, rinfo) => this.#onDatagram(msg, rinfo));
    const bound = udp.address();
    this.#sock.write(encodeReply(Reply.Succeeded, { host: bound.address, port: bound.port }));
  }

  #onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    const assoc = this.#assoc as DatagramAssociation;
    try {
      if (normalize(rinfo.address) !== this.#srcAddress || (this.#srcPort !== 0 && rinfo.port !== this.#srcPort) || rinfo.port === 0)
        return assoc.drop('foreign-source');
      const p = parseUdpDatagram(msg);
      if (p.kind === 'bad') return assoc.drop(p.reason === 'fragmented' ? 'fragmented' : 'bad-header');
      if (this.#srcPort === 0) this.#srcPort = rinfo.port;
      assoc.send(p.value.destination, p.value.data);
    } catch {
      // A bug reached by one datagram costs that datagram, never the shim.
      this.#ctx.stats.internalErrors++;
    }
  }

  #end(reason: string): void {
    if (this.#step === 'closed' && !this.#assoc && !this.#udp) return;
    this.#step = 'closed';
    this.#timer.cancel();
    const udp = this.#udp;
    this.#udp = undefined;
    udp?.close();
    const assoc = this.#assoc;
    this.#assoc = undefined;
    assoc?.close(reason);
    this.#sock.destroy();
  }
}

/** IPv4-mapped IPv6 as plain IPv4, so one source has one spelling. */
function normalize(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
