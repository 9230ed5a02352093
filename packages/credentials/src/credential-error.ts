// Why a credential could not be made or was refused. `code` is for programs, `reason` for people;
// a reason never contains a secret or a password.

export type CredentialErrorCode =
  /** An option is out of range (ttl, jitter, maxTtl, clockSkew, byte count). */
  | 'invalid-option'
  /** A secret is empty, or no secret was given. */
  | 'invalid-secret'
  /** The caller's label cannot go into a username. */
  | 'invalid-label'
  /** The username is not `<expiry>` or `<expiry>:<id>`. */
  | 'malformed-username'
  /** The expiry has passed (beyond the tolerated clock skew). */
  | 'expired'
  /** The expiry is further ahead than the configured maximum ttl allows. */
  | 'expiry-too-far'
  /** No configured secret produces this password. */
  | 'wrong-password';

export interface CredentialError {
  readonly code: CredentialErrorCode;
  readonly reason: string;
}

export function credentialError(code: CredentialErrorCode, reason: string): CredentialError {
  return { code, reason };
}
