// Stateless nonces (RFC 8489 §9.2): the issue time and a MAC over it and the client's transport
// address, so a nonce is only good for the client it was given to and only for a while. The
// time counts from a random origin, so nonces do not reveal the server's clock. Nothing is kept
// per client, so issuing one costs no memory: the server and the client shim's local-credential
// mode both answer unauthenticated requests with these before anything is allocated.
// It lives in protocol, not in the server: the NONCE and its cookie are STUN long-term auth
// (RFC 8489 §9.2), both the server and the shim (its local auth) issue them, and the shim must not
// depend on the server. Pure like the rest of the package: time passed in, no timers.
import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** RFC 8489 nonce cookie plus the security-feature bits (password algorithms). */
export const NONCE_COOKIE = 'obMatJos2AAAB';
/**
 * No cookie: for a party that does not offer PASSWORD-ALGORITHMS (RFC 8489 §9.2.5: a client seeing
 * the cookie with that bit set and no PASSWORD-ALGORITHMS attribute must give up).
 */
export const NO_NONCE_COOKIE = '';

export type NonceCheck = 'ok' | 'stale' | 'invalid';

export class NonceIssuer {
  readonly #secret: Buffer;
  readonly #lifetimeMs: number;
  readonly #originMs: number;
  readonly #cookie: string;

  constructor(lifetimeMs: number, secret: Buffer = randomBytes(32), originMs: number = -randomInt(0, 2 ** 40), cookie: string = NONCE_COOKIE) {
    this.#secret = secret;
    this.#lifetimeMs = lifetimeMs;
    this.#originMs = originMs;
    this.#cookie = cookie;
  }

  issue(clientKey: string, nowMs: number): string {
    const stamp = Buffer.allocUnsafe(4);
    stamp.writeUInt32BE(Math.floor((nowMs - this.#originMs) / 1000) >>> 0, 0);
    return this.#cookie + Buffer.concat([stamp, this.#mac(stamp, clientKey)]).toString('base64url');
  }

  check(nonce: string, clientKey: string, nowMs: number): NonceCheck {
    const cookie = this.#cookie;
    if (!nonce.startsWith(cookie) || nonce.length !== cookie.length + 22) return 'invalid';
    const raw = Buffer.from(nonce.slice(cookie.length), 'base64url');
    // Only the canonical spelling: base64url's spare low bits must not make a second valid nonce.
    if (raw.length !== 16 || raw.toString('base64url') !== nonce.slice(cookie.length)) return 'invalid';
    const stamp = raw.subarray(0, 4);
    if (!timingSafeEqual(raw.subarray(4), this.#mac(stamp, clientKey))) return 'invalid';
    const ageMs = Math.floor((nowMs - this.#originMs) / 1000) * 1000 - stamp.readUInt32BE(0) * 1000;
    return ageMs >= 0 && ageMs < this.#lifetimeMs ? 'ok' : 'stale';
  }

  #mac(stamp: Buffer, clientKey: string): Buffer {
    return createHmac('sha256', this.#secret).update(stamp).update(clientKey).digest().subarray(0, 12);
  }
}
