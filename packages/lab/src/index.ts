// @onionturn/lab: what `npm start` runs, and what the tests reuse: a private Tor network of real
// tor processes on loopback (optionally shaped like a real one), the whole bridge (server, shim,
// Tor) started by path from this checkout, a relay-only WebRTC call in Chromium to prove it, and
// the plumbing under them (Debian tools installed on demand, processes tracked by PID, free ports,
// network namespaces). @onionturn/testkit re-exports all of it under the same names.
export { TOOLS, findExecutable, requireTool, type ToolSpec } from './tools.js';
export { ProcessGroup, alive, sleep, waitFor, type Started } from './processes.js';
export { freePort, freePortRange, portFree, portRange } from './ports.js';
export { NetNamespace } from './netns.js';
export { videoLagMs } from './video-lag.js';
export { CallBrowser, median, type BenchCallConfig, type BenchCallResult, type CallConfig, type CallResult, type CandidatePairInfo } from './webrtc-call.js';
export {
  measureCircuitRtt,
  startTorNetwork,
  TorNetworkStartError,
  type TorNetwork,
  type TorNetworkOptions,
  type TorNetworkTimings,
  type TorNode,
  type TorOnionService,
} from './tor-network.js';
export {
  buildTorrc,
  dirAuthorityLine,
  MIN_BANDWIDTH_RATE,
  onionbalanceObConfig,
  resolvConf,
  votingStartOffset,
  VOTING,
  type DirAuthority,
  type TorRole,
  type TorrcOptions,
} from './torrc.js';
export { base32, generateOnionIdentity, onionHostname, type OnionIdentity } from './onion-key.js';
export { authorityKeys, defaultKeyCacheDir, installAuthorityKeys, rsaFingerprint, type AuthorityKeys } from './tor-keys.js';
export { TorControl, TorControlError, parseCircuitStatus, parseStreamStatus, type CircuitStatus, type ControlReply, type StreamStatus } from './tor-control.js';
export {
  DNS_TYPE_A,
  DNS_TYPE_AAAA,
  decodeDnsQuery,
  encodeDnsAnswer,
  encodeDnsFormatError,
  startDnsResponder,
  type DnsQuery,
  type DnsResponder,
  type DnsResponderOptions,
} from './dns-responder.js';
export { startEchoServer, type EchoServer } from './echo-server.js';
export { SOCKS5_REPLIES, Socks5Error, socks5Connect, type Socks5ConnectOptions } from './socks5.js';
export { startSocksForwarder, type SocksForwarder, type SocksForwarderOptions } from './socks-forwarder.js';
export { consensusMicrodescDigests, hasCompleteDirInfo, microdescDigests } from './tor-dirinfo.js';
export { repoRoot, onionturnBin } from './repo-root.js';
export {
  startBridge,
  metricSum,
  type Bridge,
  type BridgeOptions,
  type RestCredentialJson,
  type ServerHandle,
  type ServerOptions,
  type ShimHandle,
  type ShimOptions,
} from './bridge.js';
export { canConnect, udpBound, tcpEntries, countServerConnections, countClientConnections, type TcpEntry } from './sockets.js';
export { Bottleneck, DelayLine, SEGMENT_BYTES, ShapedLink, StallSchedule, seededRandom, type LinkShape } from './link-shaper.js';
export { startShapingProxy, type ShapingProxy, type ShapingProxyOptions } from './shaping-proxy.js';
export { LAB_PROFILES, LAB_PROFILE_NAMES, labProfile, type LabNamespaceSettings, type LabProfile } from './lab-profiles.js';
export { LAB_NAMESPACE_ENV, createLabNamespace, runInLabNamespace } from './lab-namespace.js';
export { startBulkDownload, type BulkDownload } from './bulk-download.js';
export {
  BOTTLENECK_BULK_ADDRESS,
  BOTTLENECK_LAB_ADDRESS,
  BOTTLENECK_RELAY_ADDRESS,
  BottleneckNetwork,
  bottleneckNetworkCommands,
  parseQdiscCounters,
  queueBytes,
  type BottleneckCounters,
  type NamespacedCommand,
  type RelayBottleneck,
} from './relay-bottleneck.js';
export { cutRecovery, MIN_OUTAGE_MS, NEVER_AFTER_MS, type CutRecovery, type FrameSample } from './cut-recovery.js';
export { STABLE_SHIM_PORTS, chooseStablePort, type PortChoice } from './stable-port.js';
