// How the core learns passwords: an injected lookup, so static users, REST secrets (and
// anything an operator writes) plug in the same way.
import { parseRestUsername, passwordsFor } from '@onionturn/credentials';

export interface Credential {
  /** Passwords to try, in order (REST: one per configured secret, newest first). */
  readonly passwords: readonly string[];
  /** When the credential stops being valid for new allocations (ms since epoch); none = never. */
  readonly expiresAtMs?: number;
}

/** Returns the candidate passwords for a username in a realm, or undefined for an unknown user. */
export type CredentialLookup = (username: string, realm: string, nowMs: number) => Credential | undefined;

/** Static `name:password` users. */
export function staticUsers(users: ReadonlyMap<string, string>): CredentialLookup {
  return (username) => {
    const password = users.get(username);
    return password === undefined ? undefined : { passwords: [password] };
  };
}

/** Tries each lookup in turn; the first that knows the user answers. */
export function chainLookups(...lookups: readonly CredentialLookup[]): CredentialLookup {
  return (username, realm, nowMs) => {
    for (const lookup of lookups) {
      const c = lookup(username, realm, nowMs);
      if (c) return c;
    }
    return undefined;
  };
}

/** Parses "name:password" (the password may contain ':'). */
export function parseUserSpec(spec: string): { name: string; password: string } | undefined {
  const i = spec.indexOf(':');
  if (i <= 0 || i === spec.length - 1) return undefined;
  return { name: spec.slice(0, i), password: spec.slice(i + 1) };
}

export interface RestSecretsOptions {
  /** Shared secrets, newest first. */
  readonly secrets: readonly string[];
  /** Refuse usernames whose expiry lies further ahead than this many seconds. */
  readonly maxTtl?: number;
}

/**
 * REST credentials (coturn's use-auth-secret): the password of "<expiry>:<id>" is derived from
 * each secret in turn. Expired usernames and expiries beyond maxTtl are unknown users.
 */
export function restSecrets(options: RestSecretsOptions): CredentialLookup {
  return (username, _realm, nowMs) => {
    const r = passwordsFor(username, { secrets: options.secrets, now: nowMs, ...(options.maxTtl !== undefined ? { maxTtl: options.maxTtl } : {}) });
    if (!r.ok) return undefined;
    const parsed = parseRestUsername(username);
    return { passwords: r.value.map((c) => c.password), ...(parsed ? { expiresAtMs: parsed.expiry * 1000 } : {}) };
  };
}
