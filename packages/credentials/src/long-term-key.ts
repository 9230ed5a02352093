// The long-term credential key a TURN server checks MESSAGE-INTEGRITY with (RFC 8489 §9.2.2):
// MD5(username ":" realm ":" password) for MESSAGE-INTEGRITY (SHA-1), and SHA-256 over the same
// string for MESSAGE-INTEGRITY-SHA256. REST usernames and passwords are ASCII, so the SASLprep /
// OpaqueString step is the identity for them; realms are operator-chosen ASCII too.
import { createHash } from 'node:crypto';

export type KeyAlgorithm = 'md5' | 'sha256';

export function longTermKey(username: string, realm: string, password: string, algorithm: KeyAlgorithm = 'md5'): Buffer {
  return createHash(algorithm).update(`${username}:${realm}:${password}`, 'utf8').digest();
}
