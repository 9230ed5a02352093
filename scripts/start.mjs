#!/usr/bin/env node
// `npm start`: the main job. Installs and builds what is missing, then runs the onionturn CLI.
// Until the end-to-end demo lands it shows the CLI and what each subcommand does.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
process.chdir(root);
function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`start: '${cmd} ${args.join(' ')}' failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}
if (!existsSync(join(root, 'node_modules', '.package-lock.json'))) run('npm', ['ci', '--no-audit', '--no-fund']);
run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b']);
const cli = join(root, 'packages', 'cli', 'bin', 'onionturn.js');
run(process.execPath, [cli, ...(process.argv.length > 2 ? process.argv.slice(2) : ['--help'])]);
