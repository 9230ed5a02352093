// @onionturn/credentials: REST-style time-limited TURN credentials (draft-uberti-behave-turn-rest-00,
// coturn `use-auth-secret` compatible). Pure: no sockets, timers or logging. The Node HTTP endpoint
// that serves them lives apart, in '@onionturn/credentials/http'.
export { ok, err, type Result } from './result.js';
export { credentialError, type CredentialError, type CredentialErrorCode } from './credential-error.js';
export { cryptoRandom, type RandomSource } from './randomness.js';
export { restPassword } from './rest-password.js';
export { formatRestUsername, parseRestUsername, type RestUsername } from './rest-username.js';
export { longTermKey, type KeyAlgorithm } from './long-term-key.js';
export {
  DEFAULT_TTL,
  ID_BYTES,
  LABEL_PATTERN,
  MAX_DEFAULT_JITTER,
  defaultJitter,
  generate,
  generateSecret,
  type GenerateOptions,
  type RestCredential,
} from './generate.js';
export {
  DEFAULT_CLOCK_SKEW,
  checkRestUsername,
  keysFor,
  passwordsFor,
  verify,
  type CandidateKey,
  type CandidatePassword,
  type Verified,
  type VerifyOptions,
} from './verify.js';
export { handleCredentialRequest, type CredentialRequest, type CredentialResponse, type EndpointConfig } from './credential-request.js';
