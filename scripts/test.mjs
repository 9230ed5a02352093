#!/usr/bin/env node
// `npm test`: installs npm packages when missing, builds, then runs every test with node:test.
// Integration tests install the Debian tools they need themselves (see packages/testkit).
//   --unit       only the pure unit tests (files not named *.interop.test.js / *.e2e.test.js)
//   FILTER...    only test files whose path contains one of the given strings
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
process.chdir(root);
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const filters = args.filter((a) => !a.startsWith('--'));

function run(cmd, cmdArgs) {
  const r = spawnSync(cmd, cmdArgs, { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`test: '${cmd} ${cmdArgs.join(' ')}' failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}

if (!existsSync(join(root, 'node_modules', '.package-lock.json'))) {
  console.log('test: node_modules missing, running npm ci');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}
run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b']);

function collect(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = [];
for (const pkg of readdirSync('packages')) collect(join('packages', pkg, 'dist', 'test'), files);
collect(join('test', 'dist'), files);
const chosen = files
  .map((f) => relative(root, f))
  .filter((f) => !unitOnly || !/\.(interop|e2e)\.test\.js$/.test(f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (chosen.length === 0) {
  console.error('test: no test files found; did the build produce dist/test?');
  process.exit(1);
}
console.log(`test: running ${chosen.length} test files`);
run(process.execPath, ['--test', '--test-reporter=spec', ...chosen]);
