// Server side: which passwords (and long-term keys) a REST username may carry, one per configured
// secret, newest first, so secrets rotate without a flag day (draft §5.2). Unlike coturn and
// pion, an expiry further ahead than maxTtl is refused: a leaked credential cannot live forever.
import { timingSafeEqual } from 'node:crypto';
import { credentialError, type CredentialError } from './credential-error.js';
import { DEFAULT_TTL } from './generate.js';
import { longTermKey, type KeyAlgorithm } from './long-term-key.js';
import { restPassword } from './rest-password.js';
import { parseRestUsername, type RestUsername } from './rest-username.js';
import { err, ok, type Result } from './result.js';

/** Tolerated difference between issuer and server clocks, in seconds. */
export const DEFAULT_CLOCK_SKEW = 60;

export interface VerifyOptions {
  /** Configured secrets, newest first. At least one. */
  readonly secrets: readonly string[];
  /** Refuse expiries later than now + maxTtl (+ skew), in seconds (default 86400). */
  readonly maxTtl?: number;
  /** Seconds of clock difference tolerated on both ends (default 60). */
  readonly clockSkew?: number;
  /** Current time in milliseconds since the epoch (default Date.now()). */
  readonly now?: number;
}

export interface CandidatePassword {
  /** Index into `secrets`: 0 is the newest. */
  readonly secretIndex: number;
  readonly password: string;
}

export interface CandidateKey {
  readonly secretIndex: number;
  readonly key: Buffer;
}

export interface Verified extends RestUsername {
  readonly secretIndex: number;
}

/** Checks the username's form and time window, without looking at any secret. */
export function checkRestUsername(username: string, options: Omit<VerifyOptions, 'secrets'> = {}): Result<RestUsername, CredentialError> {
  const maxTtl = options.maxTtl ?? DEFAULT_TTL;
  const skew = options.clockSkew ?? DEFAULT_CLOCK_SKEW;
  if (!Number.isSafeInteger(maxTtl) || maxTtl <= 0)
    return err(credentialError('invalid-option', `maxTtl must be a positive whole number of seconds, got ${maxTtl}`));
  if (!Number.isSafeInteger(skew) || skew < 0) return err(credentialError('invalid-option', `clockSkew must be a whole number of seconds >= 0, got ${skew}`));
  const parsed = parseRestUsername(username);
  if (!parsed) return err(credentialError('malformed-username', 'the username is not <expiry>[:<id>]'));
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  if (parsed.expiry + skew < nowSeconds) return err(credentialError('expired', 'the credential has expired'));
  if (parsed.expiry > nowSeconds + maxTtl + skew) return err(credentialError('expiry-too-far', 'the expiry is further ahead than the maximum ttl'));
  return ok(parsed);
}

function checkSecrets(secrets: readonly string[]): CredentialError | undefined {
  if (secrets.length === 0) return credentialError('invalid-secret', 'no secret is configured');
  if (secrets.some((s) => s.length === 0)) return credentialError('invalid-secret', 'a configured secret is empty');
  return undefined;
}

function candidates(
  username: string,
  options: VerifyOptions,
): Result<{ readonly parsed: RestUsername; readonly passwords: readonly CandidatePassword[] }, CredentialError> {
  const secretError = checkSecrets(options.secrets);
  if (secretError) return err(secretError);
  const checked = checkRestUsername(username, options);
  if (!checked.ok) return checked;
  const passwords = options.secrets.map((secret, secretIndex) => ({ secretIndex, password: restPassword(secret, username) }));
  return ok({ parsed: checked.value, passwords });
}

/** The password each secret gives this username, newest secret first, if the username is acceptable now. */
export function passwordsFor(username: string, options: VerifyOptions): Result<readonly CandidatePassword[], CredentialError> {
  const found = candidates(username, options);
  return found.ok ? ok(found.value.passwords) : found;
}

/** The long-term key for each secret, newest first: what a server checks MESSAGE-INTEGRITY with. */
export function keysFor(
  username: string,
  realm: string,
  options: VerifyOptions & { readonly algorithm?: KeyAlgorithm },
): Result<readonly CandidateKey[], CredentialError> {
  const passwords = passwordsFor(username, options);
  if (!passwords.ok) return passwords;
  return ok(passwords.value.map(({ secretIndex, password }) => ({ secretIndex, key: longTermKey(username, realm, password, options.algorithm) })));
}

/** Checks a username/password pair (e.g. for an HTTP API); compares in constant time. */
export function verify(username: string, password: string, options: VerifyOptions): Result<Verified, CredentialError> {
  const found = candidates(username, options);
  if (!found.ok) return found;
  const given = Buffer.from(password, 'utf8');
  let match: number | undefined;
  // Try every secret even after a match so timing does not tell which secret signed it.
  for (const { secretIndex, password: expected } of found.value.passwords) {
    const wanted = Buffer.from(expected, 'utf8');
    const equal = wanted.length === given.length && timingSafeEqual(wanted, given);
    if (equal && match === undefined) match = secretIndex;
  }
  if (match === undefined) return err(credentialError('wrong-password', 'no configured secret matches the password'));
  return ok({ ...found.value.parsed, secretIndex: match });
}
