// @onionturn/server: the exit-side TURN server. TurnCore is the sans-IO protocol engine;
// TurnServer wraps it in Node sockets.
export { Allocation, Client, Relay, type ClientLink, type ClientTransport, type HandOffResult, type RelaySocket } from './allocation.js';
export { chainLookups, parseUserSpec, restSecrets, staticUsers, type RestSecretsOptions, type Credential, type CredentialLookup } from './auth.js';
export { DEFAULT_LIFETIMES, DEFAULT_LIMITS, type Lifetimes, type Limits } from './limits.js';
export { createLogger, scrub, type Logger, type LoggerOptions } from './logger.js';
export { createMetricsRegistry, serveMetrics, type MetricsSource } from './metrics.js';
export { totalsCounter, type Totals } from './totals-counter.js';
export {
  DEFAULT_DENIED_IPV4,
  DEFAULT_DENIED_IPV6,
  DEFAULT_DENIED_UDP_PORTS,
  PeerPolicy,
  defaultDenyRules,
  parseAllowPeer,
  parsePolicyRule,
  type PolicyRule,
} from './peer-policy.js';
export { PortPool } from './port-pool.js';
export { OwnAddressWatch } from './own-addresses.js';
export { DEFAULT_UDP_ADMISSION, DEFAULT_UDP_CLIENT_LIMITS, UdpClients, type Admission, type UdpAdmissionRate, type UdpClientLimits } from './udp-clients.js';
export { PROXY_V1_MAX, parseProxyV1, type ProxyHeader } from './proxy-header.js';
export { proxySource, readProxyHeader, type ProxyHeaderOk } from './proxy-listener.js';
export { RelayRegistry, SharedRelays, type LiveRelays, type RelayBatch, type FlushScheduler } from './relay-registry.js';
export { SharedReservations, type ReservationMessage } from './shared-reservations.js';
export type { LentReservation, ReservationExchange } from './reservations.js';
export { CoreStats } from './stats.js';
export type { ChannelRange, CoreEvents, CoreOptions, Filtering, RelayAddress, RelayBinder } from './core-options.js';
export { TurnCore } from './turn-core.js';
export { TurnServer, pickRelays, type ClusterShare, type HandOff, type HandOffSink, type ListenSpec, type TurnServerConfig } from './node-server.js';
export { closeHandle } from './handoff-socket.js';
export {
  DEFAULT_UDP_GATEWAY_LIMITS,
  GatewaySession,
  GatewayStats,
  type GatewayCloseReason,
  type GatewaySink,
  type UdpGatewayLimits,
} from './udp-gateway-session.js';
export { UdpGateway, type UdpGatewayOptions } from './udp-gateway.js';
export { DEFAULT_DESTINATION_LIMITS, DestinationBudgets, DestinationEntry, type DestinationLimits } from './destination-budgets.js';
export { createGatewayMetricsRegistry } from './udp-gateway-metrics.js';
