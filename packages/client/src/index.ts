// @onionturn/client: the local TURN shim that carries each app flow as TURN-over-TCP in its own
// Tor stream. Pure cores (framing, flow state, SOCKS codec, endpoints) and the Node shell (Shim).
export { Shim, type ShimOptions, type ListeningAddress } from './shim.js';
export { DEFAULT_NEW_FLOWS_PER_SECOND, DialPacer, type DialPacerOptions } from './dial-pacer.js';
export { ShimStats } from './stats.js';
export { createLogger, type Logger, type LoggerOptions } from './logger.js';
export { iceServers, type IceServer } from './ice-servers.js';
export {
  formatHostPort,
  isLoopbackAddress,
  parseHostPort,
  parseListen,
  parseUpstream,
  type HostPort,
  type Parsed,
  type UpstreamServer,
  type UpstreamTransport,
} from './endpoints.js';
export { ISOLATION_MODES, IsolationPolicy, type IsolationMode } from './isolation.js';
export { answerBinding, answerFlowlessBinding, appTransportAddress, type BindingSignature, type FlowlessBinding } from './binding-answer.js';
export { NOT_TURN, firstFrameVerdict, isStunRequest, messageEnd, paddingBytes, type FirstFrameVerdict } from './app-datagram.js';
export { DEFAULT_LIFETIME_S, DEFAULT_QUEUE_LIMITS, FlowState, IDLE_GRACE_S, type QueueLimits } from './flow-state.js';
export { Reply, connectReplyLength, encodeConnect, encodeGreeting, encodeUserPass, replyText, type SocksAuth } from './socks5-codec.js';
export { socksConnect, type SocksConnectOptions, type SocksResult } from './socks5-connect.js';
export { UpstreamDialer, serverName, type DialResult, type TlsTrust } from './upstream-dialer.js';
export { formatPin, parsePin, spkiSha256 } from './tls-pin.js';
export { upstreamError, type UpstreamError, type UpstreamErrorCode } from './errors.js';
export { AppAuthenticator, type AppAuthCheck, type AppAuthOptions, type AppSignature, type LocalCredentials } from './app-auth.js';
export { answerFlowless, type FlowlessReason, type FlowlessVerdict } from './flowless-request.js';
export {
  CredentialResigner,
  WRONG_LOCAL_CREDENTIALS,
  type ResignAction,
  type ResignerOptions,
  type ResignWarning,
  type UpstreamCredential,
} from './credential-resigner.js';
export { SecretCredentialSource, UrlCredentialSource, parseCredentialResponse, type CredentialResult, type CredentialSource, type UrlCredentialOptions } from './upstream-credentials.js';
export type { LocalAuthConfig } from './flow-context.js';
export { WarnEvery, WarnOnce } from './warn-once.js';
export { managedTorrc, parseTorLine, type ManagedTorrcOptions, type TorLogEvent } from './tor-config.js';
export { TOR_INSTALL_HINT, findTor, removeStaleDataDirs, startManagedTor, type ManagedTor, type ManagedTorError, type ManagedTorOptions, type ManagedTorResult } from './managed-tor.js';
export { checkTorSocks, judgeTorAnswers, type TorSocksVerdict } from './tor-socks-check.js';
