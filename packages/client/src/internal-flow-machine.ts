// The shim's flow machine and its local-credential parts for the fuzzer (fuzz/), which drives
// them as an app and an upstream server would. Not the public API (see index.ts).
export { AppAuthenticator } from './app-auth.js';
export { NOT_TURN, messageEnd } from './app-datagram.js';
export { CredentialResigner } from './credential-resigner.js';
export { FlowMachine, type FlowAction, type FlowKind } from './flow-machine.js';
export { ShimStats } from './stats.js';
