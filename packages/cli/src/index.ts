export { main, type CliIo } from './main.js';
export { ExitCode, UsageError, exitCodeFor, oneLine } from './exit-codes.js';
export {
  ENV_PREFIX,
  envOptionNames,
  givenOnCommandLine,
  ignoreForeignEnv,
  isLoopback,
  loadConfigFile,
  parseConfigText,
  parseListen,
  positiveInteger,
  readSecretFile,
  resolveSecrets,
  type ListenAddress,
  type SecretResolution,
  type SecretSources,
} from './config.js';
export { createLogger, type Logger } from '@onionturn/server';
export type { CliContext } from './cli-context.js';
export { defaultServerArgs, parseListenSpecs, parsePortRange, serverConfig, type ServerArgs } from './commands/server.js';
export { socksCandidates, statusPlanOf, type StatusPlan } from './commands/client.js';
export { formatTarget, parseProbeTarget } from './commands/probe.js';
export { parseGatewayListen, parseGatewayTarget } from './commands/udp-gateway.js';
