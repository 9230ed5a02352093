// Shared by npm test / npm start / benchmarks: install npm packages when missing, then build.
// Run directly (`node scripts/prepare.mjs`) it does both and exits.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(fileURLToPath(import.meta.url), '..', '..');

export function run(cmd, args, what = 'prepare') {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root });
  if (r.status !== 0) {
    console.error(`${what}: '${cmd} ${args.join(' ')}' failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}

export function prepare(what = 'prepare') {
  const installed = join(root, 'node_modules', '.package-lock.json');
  // Missing, or older than the lockfile (a pull changed dependencies or workspace bins).
  if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(join(root, 'package-lock.json')).mtimeMs) {
    console.log(`${what}: node_modules missing or stale, running npm ci`);
    run('npm', ['ci', '--no-audit', '--no-fund'], what);
  }
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'], what);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) prepare();
