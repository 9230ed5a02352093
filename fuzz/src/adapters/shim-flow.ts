// The one place the fuzzer names the shim's flow machine and its local-credential parts, internals
// of packages/client reached by the "internal/flow-machine" subpath (the index exports the public
// API only): a move or rename there is a change here only.
export {
  AppAuthenticator,
  CredentialResigner,
  NOT_TURN,
  messageEnd,
  FlowMachine,
  ShimStats,
  type FlowAction,
  type FlowKind,
} from '@onionturn/client/internal/flow-machine';
