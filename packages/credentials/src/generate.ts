// Issuing REST credentials without revealing the issuer's clock or linking sessions
// (Tor proposal 348): the expiry is pulled back by a uniformly random offset inside a window,
// and the id is a fresh 128-bit random value unless the caller asks for a (linkable) label.
import { credentialError, type CredentialError } from './credential-error.js';
import { cryptoRandom, type RandomSource } from './randomness.js';
import { restPassword } from './rest-password.js';
import { formatRestUsername } from './rest-username.js';
import { err, ok, type Result } from './result.js';

/** coturn's and the draft's customary lifetime: one day. */
export const DEFAULT_TTL = 86_400;
/** The default jitter window is a tenth of the ttl, but never more than this (seconds). */
export const MAX_DEFAULT_JITTER = 3_600;
/** 128 bits: ids must not collide across all the credentials an exit ever sees. */
export const ID_BYTES = 16;
/** Labels go into STUN USERNAME (< 513 bytes) and logs of other servers: keep them short and plain. */
export const LABEL_PATTERN = /^[A-Za-z0-9._~@+=-]{1,128}$/;

export interface GenerateOptions {
  /** Shared secret (the newest one when rotating). */
  readonly secret: string;
  /** Nominal lifetime in seconds; returned unchanged as `ttl`. */
  readonly ttl: number;
  /** Current time in milliseconds since the epoch (default Date.now()). */
  readonly now?: number;
  /**
   * Width in seconds of the window the expiry is pulled back into: expiry is uniform in
   * [now + ttl - jitter, now + ttl - 1]. Default min(floor(ttl / 10), 3600); 0 disables it.
   */
  readonly jitter?: number;
  /**
   * Fixed id instead of the random one. It LINKS every credential issued with it (and every
   * session using them) to each other: use it only when the caller wants that.
   */
  readonly label?: string;
  readonly random?: RandomSource;
}

export interface RestCredential {
  readonly username: string;
  readonly password: string;
  /** The nominal ttl asked for; the real expiry is up to `jitter` seconds earlier. */
  readonly ttl: number;
  /** Unix seconds, as in the username. */
  readonly expiry: number;
}

export function defaultJitter(ttl: number): number {
  return Math.min(Math.floor(ttl / 10), MAX_DEFAULT_JITTER);
}

export function generate(options: GenerateOptions): Result<RestCredential, CredentialError> {
  const { secret, ttl } = options;
  if (secret.length === 0) return err(credentialError('invalid-secret', 'the secret is empty'));
  if (!Number.isSafeInteger(ttl) || ttl <= 0) return err(credentialError('invalid-option', `ttl must be a positive whole number of seconds, got ${ttl}`));
  const jitter = options.jitter ?? defaultJitter(ttl);
  // jitter < ttl keeps every expiry in the future at issue time.
  if (!Number.isSafeInteger(jitter) || jitter < 0 || jitter >= ttl) {
    return err(credentialError('invalid-option', `jitter must be a whole number of seconds in [0, ttl), got ${jitter}`));
  }
  const random = options.random ?? cryptoRandom;
  let id: string;
  if (options.label === undefined) {
    id = Buffer.from(random.bytes(ID_BYTES)).toString('base64url');
  } else if (LABEL_PATTERN.test(options.label)) {
    id = options.label;
  } else {
    return err(credentialError('invalid-label', 'a label is 1-128 characters from A-Z a-z 0-9 . _ ~ @ + = -'));
  }
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  // Offsets start at 1, so the exact now + ttl never appears (unless jitter is disabled).
  const offset = jitter === 0 ? 0 : random.int(1, jitter + 1);
  const expiry = nowSeconds + ttl - offset;
  const username = formatRestUsername(expiry, id);
  return ok({ username, password: restPassword(secret, username), ttl, expiry });
}

/** A fresh shared secret: `bytes` random bytes as hex (safe in coturn config and shell). */
export function generateSecret(bytes = 32, random: RandomSource = cryptoRandom): Result<string, CredentialError> {
  // Below 16 bytes (128 bits) an offline guess against one observed password becomes thinkable.
  if (!Number.isSafeInteger(bytes) || bytes < 16 || bytes > 1024) {
    return err(credentialError('invalid-option', `a secret has 16 to 1024 bytes, got ${bytes}`));
  }
  return ok(Buffer.from(random.bytes(bytes)).toString('hex'));
}
