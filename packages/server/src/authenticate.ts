// The long-term credential check every request but Binding passes (RFC 8489 §9.2.4): realm,
// nonce, password algorithm and MESSAGE-INTEGRITY(-SHA256), against the allocation's password
// once there is one, else against the credential lookup.
import { AttributeType, ErrorCode, Method, PasswordAlgorithm, getAttribute, longTermKey, readAttribute, verifyIntegrity } from '@onionturn/protocol';
import { randomBytes } from 'node:crypto';
import type { Credential } from './auth.js';
import type { CoreOptions } from './core-options.js';
import type { NonceIssuer } from '@onionturn/protocol';
import { PASSWORD_ALGORITHMS_BYTES, type Replies, type Reply } from './replies.js';
import type { CoreStats } from './stats.js';

export interface Authenticated {
  readonly username: string;
  readonly password: string;
  readonly credential: Credential | undefined;
  readonly key: Buffer;
  /** MESSAGE-INTEGRITY-SHA256 was used (answer in kind). */
  readonly sha256: boolean;
  /** PASSWORD-ALGORITHM the key was derived with. */
  readonly algorithm: number;
}

/** What the check needs of the core. */
export interface AuthContext {
  readonly options: Pick<CoreOptions, 'realm' | 'events'>;
  readonly stats: CoreStats;
  readonly replies: Replies;
  readonly nonces: NonceIssuer;
  now(): number;
  /** Wall-clock ms: credentials only (see CoreOptions.wallNow). */
  wallNow(): number;
  /** The credential lookup in force (SIGHUP swaps it). */
  lookup(username: string, realm: string, nowMs: number): Credential | undefined;
}

/** Checked in place of a password for an unknown user, so unknown and known users take the same time. */
const DECOY_PASSWORD = randomBytes(16).toString('base64');

/**
 * Long-term credential check (RFC 8489 §9.2.4): what it established, or undefined once the error
 * has been sent.
 */
export function authenticate(ctx: AuthContext, r: Reply): Authenticated | undefined {
  const { msg, client } = r;
  if (msg.integrityOffset < 0 && msg.integritySha256Offset < 0) {
    ctx.replies.challenge(r, ErrorCode.Unauthorized);
    return undefined;
  }
  const username = readAttribute(msg, AttributeType.Username);
  const realm = readAttribute(msg, AttributeType.Realm);
  const nonce = readAttribute(msg, AttributeType.Nonce);
  if (username?.ok !== true || realm?.ok !== true || nonce?.ok !== true) {
    ctx.replies.error(r, ErrorCode.BadRequest);
    return undefined;
  }
  if (username.value.kind !== 'text' || realm.value.kind !== 'text' || nonce.value.kind !== 'text') return undefined;
  const now = ctx.now();
  const nonceState = ctx.nonces.check(nonce.value.text, client.key, now);
  if (nonceState !== 'ok') {
    ctx.replies.challenge(r, ErrorCode.StaleNonce);
    return undefined;
  }
  let algorithm: number = PasswordAlgorithm.MD5;
  const alg = readAttribute(msg, AttributeType.PasswordAlgorithm);
  const algs = getAttribute(msg, AttributeType.PasswordAlgorithms);
  // RFC 8489 §9.2.4: neither means MD5; otherwise both, and the list exactly as we sent it
  // (so a downgrade by a middlebox shows up).
  if (alg || algs) {
    if (!alg?.ok || alg.value.kind !== 'password-algorithm' || !algs || !algs.value.equals(PASSWORD_ALGORITHMS_BYTES)) {
      ctx.replies.error(r, ErrorCode.BadRequest);
      return undefined;
    }
    algorithm = alg.value.algorithm.algorithm;
    if (algorithm !== PasswordAlgorithm.MD5 && algorithm !== PasswordAlgorithm.SHA256) {
      ctx.replies.error(r, ErrorCode.BadRequest);
      return undefined;
    }
  }
  const name = username.value.text;
  const serverRealm = ctx.options.realm;
  if (realm.value.text !== serverRealm) {
    ctx.stats.authFailures++;
    ctx.replies.challenge(r, ErrorCode.Unauthorized);
    return undefined;
  }
  const sha256 = msg.integritySha256Offset >= 0;
  const alloc = client.allocation;
  // An Allocate from another user on this 5-tuple (a new client that got a port whose old
  // allocation lives on) is checked as the new request it is, and then gets 437 as any second
  // Allocate does: 437 tells a client to retry from another port (RFC 8656 §7.3), 441 does not.
  if (alloc && !(msg.method === Method.Allocate && alloc.auth.username !== name)) {
    if (alloc.auth.username !== name) {
      ctx.replies.error(r, ErrorCode.WrongCredentials);
      return undefined;
    }
    const key = alloc.auth.algorithm === algorithm ? alloc.auth.key : longTermKey(name, serverRealm, alloc.auth.password, algorithm);
    if (verifyIntegrity(msg, key) !== 'ok') {
      ctx.stats.authFailures++;
      ctx.replies.challenge(r, ErrorCode.Unauthorized);
      return undefined;
    }
    return { username: name, password: alloc.auth.password, credential: undefined, key, sha256, algorithm };
  }
  const cred = ctx.lookup(name, serverRealm, ctx.wallNow());
  if (cred) {
    for (const password of cred.passwords) {
      const key = longTermKey(name, serverRealm, password, algorithm);
      if (verifyIntegrity(msg, key) === 'ok') return { username: name, password, credential: cred, key, sha256, algorithm };
    }
  } else {
    // An unknown user costs the same key derivation and HMAC as a wrong password: the time of
    // the 401 does not tell which user names exist.
    verifyIntegrity(msg, longTermKey(name, serverRealm, DECOY_PASSWORD, algorithm));
  }
  ctx.stats.authFailures++;
  ctx.options.events?.event('auth-failed', { username: name, client: `${client.remote.address}:${client.remote.port}`, known: cred !== undefined }, 'debug');
  ctx.replies.challenge(r, ErrorCode.Unauthorized);
  return undefined;
}
