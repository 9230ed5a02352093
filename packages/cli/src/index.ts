export { main, type CliIo } from './main.js';
export { ExitCode, UsageError, exitCodeFor } from './exit-codes.js';
export {
  ENV_PREFIX,
  envOptionNames,
  givenOnCommandLine,
  ignoreForeignEnv,
  isLoopback,
  loadConfigFile,
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
