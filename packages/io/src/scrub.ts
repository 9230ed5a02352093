// SafeLogging (as Tor's) by key, for the server's and the shim's logs alike: the values of these
// fields name a user or a place (usernames, client, peer and app addresses) and are replaced
// unless the operator asks for detail while debugging. Call sites log fields; they never check.

export const SENSITIVE_KEYS: ReadonlySet<string> = new Set(['username', 'client', 'peer', 'address', 'remote', 'app']);
const SCRUBBED = '[scrubbed]';

/** `fields` with sensitive values replaced, unless `sensitive` (detail) is on. */
export function scrub(fields: Readonly<Record<string, unknown>>, sensitive: boolean): Record<string, unknown> {
  if (sensitive) return { ...fields };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = SENSITIVE_KEYS.has(k) ? SCRUBBED : v;
  return out;
}
