// Opens one stream through a SOCKS5 proxy (Tor's SocksPort): method selection, optional
// username/password (for isolation), CONNECT with the hostname as text. Per connection, not
// per packet, so a promise is fine here.
import { connect, type Socket } from 'node:net';
import { Reply, SOCKS_VERSION, connectReplyLength, encodeConnect, replyText, type SocksAuth } from './socks5-codec.js';
import { SocksHandshake, type HandshakeFailure } from './socks5-handshake.js';
import { formatHostPort, type HostPort } from './endpoints.js';
import { upstreamError, type UpstreamError } from './errors.js';
import { errorCode } from '@onionturn/io';
import { systemClock, type Clock } from './clock.js';

export interface SocksConnectOptions {
  readonly proxy: HostPort;
  readonly target: HostPort;
  /** How errors name the target (default HOST:PORT); "server #N" keeps names out of logs. */
  readonly targetName?: string;
  readonly auth?: SocksAuth | undefined;
  readonly timeoutMs: number;
  /** The shim's clock, for the timeout (default: the system's). */
  readonly clock?: Clock;
}

export type SocksResult =
  | {
      readonly ok: true;
      readonly socket: Socket;
      /** Bytes from the target that came with the reply. */
      readonly head: Buffer;
      /**
       * We offered username/password (stream isolation) and the proxy chose NONE: the stream
       * works, but the proxy ignores our isolation credentials. Tor never does this.
       */
      readonly authIgnored: boolean;
    }
  | { readonly ok: false; readonly error: UpstreamError };

export function socksConnect(opts: SocksConnectOptions): Promise<SocksResult> {
  return new Promise((resolve) => {
    const proxyText = formatHostPort(opts.proxy.host, opts.proxy.port);
    const targetText = opts.targetName ?? formatHostPort(opts.target.host, opts.target.port);
    const socket = connect({ host: opts.proxy.host, port: opts.proxy.port, noDelay: true });
    const handshake = new SocksHandshake(opts.auth);
    let requested = false;
    const step = (): string => (requested ? 'reply' : handshake.step);
    let connected = false;
    let buf: Buffer = Buffer.alloc(0);
    let done = false;
    let authIgnored = false;

    const finish = (result: SocksResult): void => {
      if (done) return;
      done = true;
      timer.cancel();
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      socket.removeListener('connect', onConnect);
      if (!result.ok) socket.destroy();
      else socket.pause();
      resolve(result);
    };
    const failWith = (e: UpstreamError): void => finish({ ok: false, error: e });

    const onConnect = (): void => {
      connected = true;
      socket.write(handshake.greeting());
    };
    const onError = (err: NodeJS.ErrnoException): void => {
      if (!connected) {
        failWith(upstreamError('socks-unreachable', `SOCKS proxy ${proxyText} is not accepting connections (${errorCode(err)}); is tor running?`));
      } else {
        failWith(upstreamError('closed', `SOCKS proxy ${proxyText} connection failed: ${errorCode(err)}`));
      }
    };
    const onClose = (): void => {
      failWith(upstreamError(connected ? 'socks-protocol' : 'socks-unreachable', `SOCKS proxy ${proxyText} closed the connection during the ${step()} step`));
    };
    const handshakeFailed = (f: HandshakeFailure): void =>
      failWith(
        f.kind === 'not-socks5'
          ? upstreamError('socks-protocol', `${proxyText} does not speak SOCKS5 (version byte 0x${f.version.toString(16)})`)
          : f.kind === 'no-method'
            ? upstreamError('socks-auth', `SOCKS proxy ${proxyText} accepts none of our authentication methods (${opts.auth ? 'username/password' : 'none'})`)
            : upstreamError('socks-auth', `SOCKS proxy ${proxyText} refused our username/password`),
      );
    const onData = (chunk: Buffer): void => {
      if (!requested) {
        let ev = handshake.push(chunk);
        while (ev.kind === 'write') {
          socket.write(ev.data);
          ev = handshake.push(Buffer.alloc(0));
        }
        if (ev.kind === 'need') return;
        if (ev.kind === 'fail') return handshakeFailed(ev.failure);
        authIgnored = ev.authIgnored;
        socket.write(encodeConnect(opts.target.host, opts.target.port));
        requested = true;
        buf = ev.rest;
      } else buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const len = connectReplyLength(buf);
      if (len === 0) return;
      if (len < 0 || buf[0] !== SOCKS_VERSION) return failWith(upstreamError('socks-protocol', `SOCKS proxy ${proxyText} sent a malformed CONNECT reply`));
      const rep = buf[1] as number;
      if (rep !== Reply.Succeeded) {
        return failWith(upstreamError('socks-reply', `SOCKS proxy ${proxyText} could not connect to ${targetText}: ${replyText(rep)}`, rep));
      }
      finish({ ok: true, socket, head: Buffer.from(buf.subarray(len)), authIgnored });
    };
    const timer = (opts.clock ?? systemClock).after(opts.timeoutMs, () =>
      failWith(
        upstreamError(
          'timeout',
          `no stream to ${targetText} via SOCKS ${proxyText} within ${opts.timeoutMs} ms (step: ${connected ? step() : 'connect to proxy'})`,
        ),
      ),
    );
    socket.on('connect', onConnect);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}
