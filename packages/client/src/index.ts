// @onionturn/client: the local TURN shim that carries each app flow as TURN-over-TCP in its own
// Tor stream. The public API only: the shim, its options and what the CLI needs to fill them.
// Internals (the flow machine, the flow table, the codecs) are imported by path in the tests.
export { Shim, type ShimOptions, type ListeningAddress } from './shim.js';
export { ShimStats } from './stats.js';
export { systemClock, type Clock, type Timer } from './clock.js';
export { DEFAULT_NEW_FLOWS_PER_SECOND } from './dial-pacer.js';
export { DEFAULT_QUEUE_LIMITS, type QueueLimits } from './flow-state.js';
export { ISOLATION_MODES, type IsolationMode } from './isolation.js';
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
export type { TlsTrust } from './upstream-dialer.js';
export { SERVER_CHOICES, DEFAULT_SERVER_RETRY_MS, type ServerChoiceMode } from './server-choice.js';
export { DEFAULT_READY_STREAM, ReadyStreamPolicy, type ReadyStreamOptions } from './ready-stream.js';
export { formatPin, parsePin } from './tls-pin.js';
export type { LocalAuthConfig } from './flow-context.js';
export type { LocalCredentials } from './app-auth.js';
export type { UpstreamCredential } from './credential-resigner.js';
export {
  SecretCredentialSource,
  UrlCredentialSource,
  type CredentialResult,
  type CredentialSource,
  type UrlCredentialOptions,
} from './upstream-credentials.js';
export type { UpstreamError, UpstreamErrorCode } from './errors.js';
export { TOR_RESTART_FIRST_MS, TOR_RESTART_MAX_MS, TOR_RESTART_STABLE_MS, TorRestartSchedule } from './tor-restart.js';
export { startManagedTor, type ManagedTor, type ManagedTorError, type ManagedTorOptions, type ManagedTorResult } from './managed-tor.js';
export { checkTorSocks, type TorSocksVerdict } from './tor-socks-check.js';
export { socksConnect, type SocksConnectOptions, type SocksResult } from './socks5-connect.js';
export { parseForward, isOnionForward, FORWARD_IDLE_MS, type ForwardSpec, type ForwardParse } from './udp-forward.js';
export type { OnionOpener, OnionDatagramStreamLike } from './datagram-association.js';
export { DATAGRAM_FLOW_KINDS, DatagramFlowStats, FLOW_KIND_LABELS, KindCounters, type DatagramFlowKind, type DatagramDropReason } from './stats.js';
export { RESOLVE_CACHE_MS } from './resolve-cache.js';
export {
  DEFAULT_ONION_CONNECT_TIMEOUT_MS,
  DEFAULT_ONION_DATAGRAM_QUEUE_BYTES,
  openOnionDatagramStream,
  type OnionDatagramStream,
  type OnionDatagramStreamOptions,
  type OnionDatagramStreamStats,
} from './onion-datagram-stream.js';
export type { SocksAuth } from './socks5-codec.js';
export { StatusServer, TorWatch, type StatusServerOptions } from './status-server.js';
export { dropsOf } from './status-model.js';
