// The long-term credential key a TURN server checks MESSAGE-INTEGRITY with (RFC 8489 §9.2.2),
// by algorithm name; the derivation itself is the codec's. REST usernames and passwords are
// ASCII, so the SASLprep / OpaqueString step is the identity for them.
import { PasswordAlgorithm, longTermKey as deriveKey } from '@onionturn/protocol';

export type KeyAlgorithm = 'md5' | 'sha256';

export function longTermKey(username: string, realm: string, password: string, algorithm: KeyAlgorithm = 'md5'): Buffer {
  return deriveKey(username, realm, password, algorithm === 'sha256' ? PasswordAlgorithm.SHA256 : PasswordAlgorithm.MD5);
}
