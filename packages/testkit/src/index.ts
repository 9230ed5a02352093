export { TOOLS, findExecutable, requireTool, type ToolSpec } from './tools.js';
export { ProcessGroup, alive, sleep, waitFor, type Started } from './processes.js';
export { freePort, portRange } from './ports.js';
export { CallBrowser, median, type CallConfig, type CallResult, type CandidatePairInfo } from './webrtc-call.js';
export {
  DEBIAN_BASE_TAG,
  NODE_BASE_TAG,
  debianRootfsTarball,
  ensureDebianBaseImage,
  ensureDockerEngine,
  ensureNodeBaseImage,
  nodeRootfsTarball,
  repoRoot,
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
  runUclient,
  startCoturn,
  startTurnutilsPeer,
  type Coturn,
  type CoturnOptions,
  type TurnutilsPeer,
  type UclientOptions,
  type UclientResult,
} from './coturn.js';
