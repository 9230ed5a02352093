// @onionturn/testkit: the test-only parts (coturn as an independent TURN server and client, a Docker
// engine and base images, SOCKS5 test servers, the CLI run by path), plus everything of
// @onionturn/lab, re-exported whole so tests import one package.
export * from '@onionturn/lab';
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
export { cleanEnv, runCli, shimArgs, shimPort, spawnClient, startServe, testTempDir, type CliRun, type Served } from './run-cli.js';
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
export { startMicrosocks, SocksRecorder, type SocksRecorderOptions, type SocksRequestRecord } from './socks-server.js';
export { allocateOnStream, errorCodeOf, longTermAllocate, readStunMessage, within, type StreamAllocation } from './turn-stream-client.js';
