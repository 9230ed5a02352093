export { TOOLS, findExecutable, requireTool, type ToolSpec } from './tools.js';
export { ProcessGroup, alive, sleep, waitFor, type Started } from './processes.js';
export { freePort, portRange } from './ports.js';
export { NetNamespace } from './netns.js';
export { CallBrowser, median, type BenchCallConfig, type BenchCallResult, type CallConfig, type CallResult, type CandidatePairInfo } from './webrtc-call.js';
export {
  DEBIAN_BASE_TAG,
  NODE_BASE_TAG,
  debianRootfsTarball,
  ensureDebianBaseImage,
  ensureDockerEngine,
  ensureNodeBaseImage,
  nodeRootfsTarball,
  runChecked,
  runCommand,
  tempDir,
  type BaseImage,
  type BaseImageOptions,
  type CommandResult,
  type DockerEngine,
  type EngineOptions,
  type RunOptions,
} from './docker.js';
export {
  runStunclient,
  runUclient,
  startCoturn,
  startTurnutilsPeer,
  type Coturn,
  type CoturnOptions,
  type StunclientResult,
  type TurnutilsPeer,
  type UclientOptions,
  type UclientResult,
} from './coturn.js';
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
export { buildTorrc, dirAuthorityLine, MIN_BANDWIDTH_RATE, resolvConf, votingStartOffset, VOTING, type DirAuthority, type TorRole, type TorrcOptions } from './torrc.js';
export { authorityKeys, defaultKeyCacheDir, installAuthorityKeys, rsaFingerprint, type AuthorityKeys } from './tor-keys.js';
export {
  TorControl,
  TorControlError,
  parseCircuitStatus,
  parseStreamStatus,
  type CircuitStatus,
  type ControlReply,
  type StreamStatus,
} from './tor-control.js';
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
export { consensusMicrodescDigests, hasCompleteDirInfo, microdescDigests } from './tor-dirinfo.js';
export { repoRoot, onionturnBin } from './repo-root.js';
export { startBridge, metricSum, type Bridge, type BridgeOptions, type RestCredentialJson, type ServerHandle, type ServerOptions, type ShimHandle, type ShimOptions } from './bridge.js';
export { startMicrosocks, SocksRecorder, type SocksRecorderOptions, type SocksRequestRecord } from './socks-server.js';
export { canConnect, udpBound, tcpEntries, countServerConnections, countClientConnections, type TcpEntry } from './sockets.js';
export { Bottleneck, DelayLine, SEGMENT_BYTES, ShapedLink, StallSchedule, seededRandom, type LinkShape } from './link-shaper.js';
export { startShapingProxy, type ShapingProxy, type ShapingProxyOptions } from './shaping-proxy.js';
export { LAB_PROFILES, LAB_PROFILE_NAMES, labProfile, type LabProfile } from './lab-profiles.js';
export { startBulkDownload, type BulkDownload } from './bulk-download.js';
