// The cli tests' names for testkit's CLI runner (packages/testkit/src/run-cli.ts), which the
// server's interop tests share.
import { onionturnBin, repoRoot, testTempDir } from '@onionturn/testkit';

export { cleanEnv, runCli, shimPort, spawnClient, startServe, type CliRun, type Served } from '@onionturn/testkit';

/** bin/onionturn.js of this checkout. */
export const BIN = onionturnBin();
export const REPO_ROOT = repoRoot() ?? process.cwd();
/** A temporary directory removed after the test. */
export const tempDir = testTempDir;
