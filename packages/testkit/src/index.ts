// @onionturn/testkit: the test-only parts (coturn as an independent TURN server and client, a Docker
// engine and base images, SOCKS5 test servers), plus everything of @onionturn/lab re-exported under
// the names tests have always imported from here.
export { TOOLS, findExecutable, requireTool, type ToolSpec } from '@onionturn/lab';
export { ProcessGroup, alive, sleep, waitFor, type Started } from '@onionturn/lab';
export { freePort, portRange } from '@onionturn/lab';
export { NetNamespace } from '@onionturn/lab';
export { CallBrowser, median, type BenchCallConfig, type BenchCallResult, type CallConfig, type CallResult, type CandidatePairInfo } from '@onionturn/lab';
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
export { cleanEnv, runCli, shimPort, startServe, testTempDir, type CliRun, type Served } from './run-cli.js';
export { listenerPort, parseListener, startServer, type BoundListener, type RunningServer, type StartServerOptions } from './run-server.js';
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
} from '@onionturn/lab';
export {
  buildTorrc,
  dirAuthorityLine,
  MIN_BANDWIDTH_RATE,
  resolvConf,
  votingStartOffset,
  VOTING,
  type DirAuthority,
  type TorRole,
  type TorrcOptions,
} from '@onionturn/lab';
export { authorityKeys, defaultKeyCacheDir, installAuthorityKeys, rsaFingerprint, type AuthorityKeys } from '@onionturn/lab';
export { TorControl, TorControlError, parseCircuitStatus, parseStreamStatus, type CircuitStatus, type ControlReply, type StreamStatus } from '@onionturn/lab';
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
} from '@onionturn/lab';
export { startEchoServer, type EchoServer } from '@onionturn/lab';
export { SOCKS5_REPLIES, Socks5Error, socks5Connect, type Socks5ConnectOptions } from '@onionturn/lab';
export { consensusMicrodescDigests, hasCompleteDirInfo, microdescDigests } from '@onionturn/lab';
export { repoRoot, onionturnBin } from '@onionturn/lab';
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
} from '@onionturn/lab';
export { startMicrosocks, SocksRecorder, type SocksRecorderOptions, type SocksRequestRecord } from './socks-server.js';
export { canConnect, udpBound, tcpEntries, countServerConnections, countClientConnections, type TcpEntry } from '@onionturn/lab';
export { Bottleneck, DelayLine, SEGMENT_BYTES, ShapedLink, StallSchedule, seededRandom, type LinkShape } from '@onionturn/lab';
export { startShapingProxy, type ShapingProxy, type ShapingProxyOptions } from '@onionturn/lab';
export { LAB_PROFILES, LAB_PROFILE_NAMES, labProfile, type LabProfile } from '@onionturn/lab';
export { startBulkDownload, type BulkDownload } from '@onionturn/lab';
