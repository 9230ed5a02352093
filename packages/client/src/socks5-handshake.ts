// The client side of a SOCKS5 handshake up to the request (RFC 1928 method selection, RFC 1929
// username/password for Tor's stream isolation), sans-IO: bytes from the proxy in, bytes to write
// and the outcome out. CONNECT (socks5-connect.ts) and Tor's RESOLVE (tor-resolve.ts) share it
// and differ only in the request they send and the reply they parse.
import { AUTH_VERSION, AuthMethod, SOCKS_VERSION, encodeGreeting, encodeUserPass, type SocksAuth } from './socks5-codec.js';

export type HandshakeFailure = { readonly kind: 'not-socks5'; readonly version: number } | { readonly kind: 'no-method' } | { readonly kind: 'auth-refused' };

export type HandshakeEvent =
  /** Wait for more bytes. */
  | { readonly kind: 'need' }
  /** Write this, then feed what comes back. */
  | { readonly kind: 'write'; readonly data: Buffer }
  /** The proxy took us: send the request; `rest` holds bytes already received after the handshake. */
  | { readonly kind: 'ready'; readonly rest: Buffer; readonly authIgnored: boolean }
  | { readonly kind: 'fail'; readonly failure: HandshakeFailure };

export class SocksHandshake {
  #step: 'method' | 'auth' | 'done' = 'method';
  #buf: Buffer = Buffer.alloc(0);

  constructor(private readonly auth: SocksAuth | undefined) {}

  /** Where the handshake is, for error texts. */
  get step(): 'method' | 'auth' | 'done' {
    return this.#step;
  }

  /** The greeting to write once connected. */
  greeting(): Buffer {
    return encodeGreeting(this.auth);
  }

  /** Feeds bytes from the proxy; call again with an empty buffer after a 'write' to go on. */
  push(chunk: Buffer): HandshakeEvent {
    if (chunk.length > 0) this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const buf = this.#buf;
    if (this.#step === 'done' || buf.length < 2) return { kind: 'need' };
    if (this.#step === 'method') {
      if (buf[0] !== SOCKS_VERSION) return { kind: 'fail', failure: { kind: 'not-socks5', version: buf[0] as number } };
      const method = buf[1];
      this.#buf = buf.subarray(2);
      if (method === AuthMethod.UserPass && this.auth) {
        this.#step = 'auth';
        return { kind: 'write', data: encodeUserPass(this.auth) };
      }
      if (method === AuthMethod.None) return this.#ready(this.auth !== undefined);
      return { kind: 'fail', failure: { kind: 'no-method' } };
    }
    if (buf[0] !== AUTH_VERSION || buf[1] !== 0) return { kind: 'fail', failure: { kind: 'auth-refused' } };
    this.#buf = buf.subarray(2);
    return this.#ready(false);
  }

  #ready(authIgnored: boolean): HandshakeEvent {
    this.#step = 'done';
    const rest = this.#buf;
    this.#buf = Buffer.alloc(0);
    return { kind: 'ready', rest, authIgnored };
  }
}
