export { TOOLS, findExecutable, requireTool, type ToolSpec } from './tools.js';
export { ProcessGroup, alive, sleep, waitFor, type Started } from './processes.js';
export { freePort, portRange } from './ports.js';
export { CallBrowser, median, type CallConfig, type CallResult, type CandidatePairInfo } from './webrtc-call.js';
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
