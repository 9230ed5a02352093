// Opens one stream through a SOCKS5 proxy (Tor's SocksPort): method selection, optional
// username/password (for isolation), CONNECT with the hostname as text. Per connection, not
// per packet, so a promise is fine here.
import { connect, type Socket } from 'node:net';
import {
  AUTH_VERSION,
  AuthMethod,
  Reply,
  SOCKS_VERSION,
  connectReplyLength,
  encodeConnect,
  encodeGreeting,
  encodeUserPass,
  replyText,
  type SocksAuth,
} from './socks5-codec.js';
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

type Step = 'method' | 'auth' | 'reply';

export function socksConnect(opts: SocksConnectOptions): Promise<SocksResult> {
  return new Promise((resolve) => {
    const proxyText = formatHostPort(opts.proxy.host, opts.proxy.port);
    const targetText = opts.targetName ?? formatHostPort(opts.target.host, opts.target.port);
    const socket = connect({ host: opts.proxy.host, port: opts.proxy.port, noDelay: true });
    let step: Step = 'method';
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
      socket.write(encodeGreeting(opts.auth));
    };
    const onError = (err: NodeJS.ErrnoException): void => {
      if (!connected) {
        failWith(upstreamError('socks-unreachable', `SOCKS proxy ${proxyText} is not accepting connections (${errorCode(err)}); is tor running?`));
      } else {
        failWith(upstreamError('closed', `SOCKS proxy ${proxyText} connection failed: ${errorCode(err)}`));
      }
    };
    const onClose = (): void => {
      failWith(upstreamError(connected ? 'socks-protocol' : 'socks-unreachable', `SOCKS proxy ${proxyText} closed the connection during the ${step} step`));
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      for (;;) {
        if (step === 'method') {
          if (buf.length < 2) return;
          if (buf[0] !== SOCKS_VERSION)
            return failWith(upstreamError('socks-protocol', `${proxyText} does not speak SOCKS5 (version byte 0x${(buf[0] as number).toString(16)})`));
          const method = buf[1];
          buf = buf.subarray(2);
          if (method === AuthMethod.UserPass && opts.auth) {
            socket.write(encodeUserPass(opts.auth));
            step = 'auth';
          } else if (method === AuthMethod.None) {
            authIgnored = opts.auth !== undefined;
            socket.write(encodeConnect(opts.target.host, opts.target.port));
            step = 'reply';
          } else {
            return failWith(
              upstreamError('socks-auth', `SOCKS proxy ${proxyText} accepts none of our authentication methods (${opts.auth ? 'username/password' : 'none'})`),
            );
          }
        } else if (step === 'auth') {
          if (buf.length < 2) return;
          if (buf[0] !== AUTH_VERSION || buf[1] !== 0) return failWith(upstreamError('socks-auth', `SOCKS proxy ${proxyText} refused our username/password`));
          buf = buf.subarray(2);
          socket.write(encodeConnect(opts.target.host, opts.target.port));
          step = 'reply';
        } else {
          const len = connectReplyLength(buf);
          if (len === 0) return;
          if (len < 0 || buf[0] !== SOCKS_VERSION) return failWith(upstreamError('socks-protocol', `SOCKS proxy ${proxyText} sent a malformed CONNECT reply`));
          const rep = buf[1] as number;
          if (rep !== Reply.Succeeded) {
            return failWith(upstreamError('socks-reply', `SOCKS proxy ${proxyText} could not connect to ${targetText}: ${replyText(rep)}`, rep));
          }
          return finish({ ok: true, socket, head: Buffer.from(buf.subarray(len)), authIgnored });
        }
      }
    };
    const timer = (opts.clock ?? systemClock).after(opts.timeoutMs, () =>
      failWith(
        upstreamError(
          'timeout',
          `no stream to ${targetText} via SOCKS ${proxyText} within ${opts.timeoutMs} ms (step: ${connected ? step : 'connect to proxy'})`,
        ),
      ),
    );
    socket.on('connect', onConnect);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}
