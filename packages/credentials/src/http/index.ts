// '@onionturn/credentials/http': the Node HTTP face of the credential API. Kept apart from the
// package's pure entry point so that importing the codec-side functions pulls in no I/O.
export { DEFAULT_RATE_LIMIT, createCredentialHandler, type CredentialHandler, type CredentialHandlerOptions, type RateLimit } from './credential-endpoint.js';
