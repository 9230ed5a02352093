// Opens the upstream stream for one flow: SOCKS5 through Tor to the server the flow table chose,
// then TLS when the server is tls://.
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import type { ScrubbingLogger } from './logger.js';
import { formatHostPort, type HostPort, type UpstreamServer } from './endpoints.js';
import { upstreamError, type UpstreamError } from './errors.js';
import type { SocksAuth } from './socks5-codec.js';
import { socksConnect } from './socks5-connect.js';
import { formatPin, spkiSha256 } from './tls-pin.js';
import { systemClock, type Clock } from './clock.js';

export interface TlsTrust {
  /** SPKI sha256 digests; any match accepts the server (no CA check then). */
  readonly pins: readonly Buffer[];
  /** PEM CA certificates for CA verification when there are no pins. */
  readonly ca?: Buffer | undefined;
}

export interface DialerOptions {
  readonly servers: readonly UpstreamServer[];
  readonly socks: HostPort;
  readonly connectTimeoutMs: number;
  readonly tls: TlsTrust;
  readonly logger: ScrubbingLogger;
  /** Name servers in log lines and errors as the user wrote them (else "server #N"). */
  readonly detail?: boolean;
  /** The shim's clock, for the SOCKS and TLS timeouts (default: the system's). */
  readonly clock?: Clock;
}

export type DialResult =
  | { readonly ok: true; readonly socket: Socket; readonly head: Buffer; readonly server: UpstreamServer }
  | { readonly ok: false; readonly error: UpstreamError };

/** What the status page shows of one server: the outcome of the last dial to it. */
export interface ServerHealth {
  /** Wall-clock ms of the last dial's end; undefined before the first. */
  lastDialAt: number | undefined;
  /** Whether that dial opened a stream. */
  reachable: boolean | undefined;
  /** Its UpstreamErrorCode when it failed. */
  lastError: string | undefined;
}

export class UpstreamDialer {
  readonly #opts: DialerOptions;
  /** One per server, in the order of `servers`. */
  readonly health: readonly ServerHealth[];
  /** The proxy's ignoring of our isolation credentials has been reported (once per shim). */
  #warnedAuthIgnored = false;

  constructor(opts: DialerOptions) {
    if (opts.servers.length === 0) throw new Error('at least one upstream server is needed');
    this.#opts = opts;
    this.health = opts.servers.map(() => ({ lastDialAt: undefined, reachable: undefined, lastError: undefined }));
  }

  get servers(): readonly UpstreamServer[] {
    return this.#opts.servers;
  }

  /** How logs and errors name servers[index]: its label only with detail (SafeLogging). */
  serverName(index: number): string {
    return serverName(this.#opts.servers, index, this.#opts.detail ?? false);
  }

  /** A Tor stream to servers[index]; which server, and failover, are the flow table's (ServerChoice). */
  async dial(index: number, auth: SocksAuth | undefined): Promise<DialResult> {
    const server = this.#opts.servers[index];
    if (server === undefined) return { ok: false, error: upstreamError('closed', 'no upstream server') };
    const r = await this.#dialOne(server, this.serverName(index), auth);
    const h = this.health[index] as ServerHealth;
    h.lastDialAt = (this.#opts.clock ?? systemClock).now();
    h.reachable = r.ok;
    h.lastError = r.ok ? undefined : r.error.code;
    return r;
  }

  async #dialOne(server: UpstreamServer, name: string, auth: SocksAuth | undefined): Promise<DialResult> {
    const r = await socksConnect({
      proxy: this.#opts.socks,
      target: server,
      targetName: name,
      auth,
      timeoutMs: this.#opts.connectTimeoutMs,
      ...(this.#opts.clock ? { clock: this.#opts.clock } : {}),
    });
    if (!r.ok) return r;
    if (r.authIgnored && !this.#warnedAuthIgnored) {
      // Warn and go on (a plain SOCKS proxy in front of something else may be deliberate), once.
      this.#warnedAuthIgnored = true;
      const { host, port } = this.#opts.socks;
      this.#opts.logger.warn(
        `SOCKS proxy ${formatHostPort(host, port)} chose no authentication although we offered username/password: stream isolation is off, flows may share Tor circuits. Tor always accepts username/password; is this proxy tor? (said once)`,
      );
    }
    if (server.transport === 'tcp') return { ok: true, socket: r.socket, head: r.head, server };
    if (r.head.length > 0) r.socket.unshift(r.head);
    return this.#startTls(server, name, r.socket);
  }

  #startTls(server: UpstreamServer, name: string, raw: Socket): Promise<DialResult> {
    const { pins, ca } = this.#opts.tls;
    return new Promise((resolve) => {
      const tls: TLSSocket = tlsConnect({
        socket: raw,
        // The name (or IP) the certificate must carry; without it Node checks against 'localhost'.
        host: server.host,
        // SNI only for names; an IP literal as servername is not allowed (RFC 6066).
        ...(isIP(server.host) === 0 ? { servername: server.host } : {}),
        ...(ca ? { ca } : {}),
        rejectUnauthorized: pins.length === 0,
        ALPNProtocols: [],
      });
      const timer = (this.#opts.clock ?? systemClock).after(this.#opts.connectTimeoutMs, () =>
        fail(upstreamError('timeout', `TLS handshake with ${name} took over ${this.#opts.connectTimeoutMs} ms`)),
      );
      const fail = (e: UpstreamError): void => {
        timer.cancel();
        tls.destroy();
        resolve({ ok: false, error: e });
      };
      tls.once('error', (err) => fail(upstreamError('tls', `TLS with ${name} failed: ${tlsErrorText(err, this.#opts.detail ?? false)}`)));
      tls.once('secureConnect', () => {
        if (pins.length > 0) {
          const cert = tls.getPeerCertificate();
          const got = cert.raw ? spkiSha256(cert.raw) : Buffer.alloc(0);
          if (!pins.some((p) => p.equals(got))) {
            fail(
              upstreamError(
                'pin-mismatch',
                `TLS certificate of ${name} does not match the pinned key (server key is ${formatPin(got)}); refusing the connection`,
              ),
            );
            return;
          }
        }
        timer.cancel();
        tls.removeAllListeners('error');
        tls.pause();
        resolve({ ok: true, socket: tls, head: Buffer.alloc(0), server });
      });
    });
  }
}

/** A server as logs name it: the label the user wrote with detail, else its place in the list. */
export function serverName(servers: readonly UpstreamServer[], index: number, detail: boolean): string {
  const s = servers[index];
  return detail && s ? s.label : `server #${index + 1}`;
}

/** Node's TLS error text; a name mismatch names the host, so without detail only its code. */
function tlsErrorText(err: NodeJS.ErrnoException, detail: boolean): string {
  if (detail || err.code !== 'ERR_TLS_CERT_ALTNAME_INVALID') return err.message;
  return 'the certificate is not for this server name (ERR_TLS_CERT_ALTNAME_INVALID)';
}
