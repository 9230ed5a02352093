// Local-credential mode, the app-facing check (RFC 8489 §9.2.4), sans-IO. One per shim, shared
// by every flow's resigner and by the shim's flowless path: its nonces are stateless (issue time
// and a MAC over it and the app's source, NonceIssuer), so the shim can challenge a source it
// keeps nothing for and still recognise the nonce when that source's signed request comes.
import { SourceBuckets } from '@onionturn/io';
import {
  NO_NONCE_COOKIE,
  NonceIssuer,
  AttributeType,
  ErrorCode,
  MessageBuilder,
  MessageClass,
  errorCodeValue,
  longTermKey,
  readText,
  verifyIntegrity,
  type StunMessage,
  type TransportAddress,
} from '@onionturn/protocol';

export interface LocalCredentials {
  readonly username: string;
  readonly password: string;
  readonly realm: string;
}

export interface AppAuthOptions {
  /** How long a local nonce is accepted before 438 Stale Nonce (default 10 minutes). */
  readonly nonceLifetimeMs?: number;
  /** The nonce MAC key; default 32 random bytes, so nonces die with the process. */
  readonly nonceSecret?: Buffer;
  /**
   * Wrong passwords one app source (address and port) may try: a burst, then one per this many
   * ms; beyond, its requests are answered 401 without being checked. Default 10, one per 6 s.
   */
  readonly failedAttempts?: { readonly burst: number; readonly everyMs: number };
}

/** How an answer to an authenticated request is signed: as the app signed its request. */
export interface AppSignature {
  readonly integrityKey: Buffer;
  readonly sha1: boolean;
  readonly sha256: boolean;
  readonly fingerprint: boolean;
}

export type AppAuthCheck =
  | { readonly kind: 'ok' }
  /** The answer to send instead (401, 438 or 400); `wrongCredentials`: signed, with a wrong user or password. */
  | { readonly kind: 'refused'; readonly data: Buffer; readonly wrongCredentials: boolean };

const DEFAULT_NONCE_LIFETIME_MS = 10 * 60_000;
const OK: AppAuthCheck = { kind: 'ok' };

export class AppAuthenticator {
  readonly local: LocalCredentials;
  readonly #key: Buffer;
  readonly #nonces: NonceIssuer;
  /** Failed attempts per app source: a web page guessing the local password gets a few. */
  readonly #failures: SourceBuckets;
  /** Requests answered 401 unchecked because their source had used up its failed attempts. */
  throttled = 0;

  constructor(local: LocalCredentials, opts: AppAuthOptions = {}) {
    const f = opts.failedAttempts ?? { burst: 10, everyMs: 6000 };
    this.#failures = new SourceBuckets(1000 / f.everyMs, f.burst);
    this.local = local;
    this.#key = longTermKey(local.username, local.realm, local.password);
    // No RFC 8489 nonce cookie: the shim offers no PASSWORD-ALGORITHMS, and an app seeing the
    // cookie's bit set without that attribute would give up (§9.2.5).
    this.#nonces = new NonceIssuer(opts.nonceLifetimeMs ?? DEFAULT_NONCE_LIFETIME_MS, opts.nonceSecret, undefined, NO_NONCE_COOKIE);
  }

  /** A fresh nonce for the app at `app` (undefined: an app whose source the shell could not tell). */
  nonce(app: TransportAddress | undefined, now: number): string {
    return this.#nonces.issue(sourceKey(app), now);
  }

  /** Is the request signed with the local credentials and a nonce this shim gave this source lately? */
  check(msg: StunMessage, app: TransportAddress | undefined, now: number): AppAuthCheck {
    if (msg.integrityOffset < 0 && msg.integritySha256Offset < 0) return this.#refused(this.challenge(msg, ErrorCode.Unauthorized, app, now), false);
    const username = readText(msg, AttributeType.Username);
    const realm = readText(msg, AttributeType.Realm);
    const given = readText(msg, AttributeType.Nonce);
    if (username === undefined || realm === undefined || given === undefined)
      return this.#refused(this.error(msg, ErrorCode.BadRequest, undefined, false), false);
    // Expired, from another source or another run of the shim: a fresh one, as for any stale nonce.
    if (this.#nonces.check(given, sourceKey(app), now) !== 'ok') return this.#refused(this.challenge(msg, ErrorCode.StaleNonce, app, now), false);
    const failures = this.#failures.get(sourceKey(app), now);
    if (failures.msUntil(1, now) > 0) {
      // Out of attempts: not checked at all, so guessing on is worth nothing until the budget refills.
      this.throttled++;
      return this.#refused(this.challenge(msg, ErrorCode.Unauthorized, app, now), true);
    }
    if (username !== this.local.username || realm !== this.local.realm || verifyIntegrity(msg, this.#key) !== 'ok') {
      failures.take(1, now);
      return this.#refused(this.challenge(msg, ErrorCode.Unauthorized, app, now), true);
    }
    return OK;
  }

  /** An error with REALM and a fresh NONCE (401 or 438), unsigned as RFC 8489 wants. */
  challenge(msg: StunMessage, code: number, app: TransportAddress | undefined, now: number): Buffer {
    return new MessageBuilder(msg.method, MessageClass.ErrorResponse, msg.transactionId)
      .add(AttributeType.ErrorCode, errorCodeValue(code))
      .add(AttributeType.Realm, { kind: 'text', text: this.local.realm })
      .add(AttributeType.Nonce, { kind: 'text', text: this.nonce(app, now) })
      .build({ fingerprint: msg.fingerprintOffset >= 0 });
  }

  /** An error response; `signed` for requests that authenticated (their answers carry integrity). */
  error(msg: StunMessage, code: number, reason: string | undefined, signed: boolean): Buffer {
    const b = new MessageBuilder(msg.method, MessageClass.ErrorResponse, msg.transactionId).add(AttributeType.ErrorCode, errorCodeValue(code, reason));
    return signed ? b.build(this.signature(msg.integrityOffset >= 0, msg.integritySha256Offset >= 0, msg.fingerprintOffset >= 0)) : b.build();
  }

  /** Signs with the local key, with the integrity attributes the app used (SHA-1 when it used none). */
  signature(sha1: boolean, sha256: boolean, fingerprint: boolean): AppSignature {
    return { integrityKey: this.#key, sha1: sha1 || !sha256, sha256, fingerprint };
  }

  #refused(data: Buffer, wrongCredentials: boolean): AppAuthCheck {
    return { kind: 'refused', data, wrongCredentials };
  }
}

/** What a nonce is bound to: the app's source address and port. */
function sourceKey(app: TransportAddress | undefined): string {
  return app === undefined ? '' : `${app.address}|${app.port}`;
}
