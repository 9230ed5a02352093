#!/usr/bin/env node
// `npm test`: installs npm packages when missing, builds, then runs every test with node:test.
// The whole run installs the Debian tools up front (scripts/prepare.mjs); filtered runs leave it to
// the integration tests, which install what they need themselves (packages/lab/src/tools.ts).
//   --unit       only the pure unit tests (files not named *.interop.test.js / *.e2e.test.js)
//   FILTER...    only test files whose path contains one of the given strings
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ensureDebianPackages, prepare, root, run } from './prepare.mjs';

process.chdir(root);
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const filters = args.filter((a) => !a.startsWith('--'));

await prepare('test');
// The whole run needs every tool (tor, coturn, chromium, docker.io, ...): installed up front, each
// named. A filtered run leaves it to the tests, which install what they use (requireTool).
if (!unitOnly && filters.length === 0) await ensureDebianPackages('test');

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
collect(join('fuzz', 'dist'), files);
// Only outputs whose source still exists: tsc -b never deletes the output of removed tests.
const hasSource = (f) => existsSync(f.replace(/(^|\/)dist\//, '$1').replace(/\.js$/, '.ts'));
const chosen = files
  .map((f) => relative(root, f))
  .filter(hasSource)
  .filter((f) => !unitOnly || !/\.(interop|e2e)\.test\.js$/.test(f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (chosen.length === 0) {
  console.error('test: no test files found; did the build produce dist/test?');
  process.exit(1);
}
// Two files at a time (node's default is one less than the cores: one here). Most of an
// integration test's time is waiting on tor (bootstrap, consensus, circuits), not CPU: on 2 cores
// the whole run took 1017 s instead of 1730 s, every test passing in both. No two files share
// anything fixed: ports are random and checked free, namespaces and temp dirs are named at random,
// and only test/docker/compose.e2e.test.ts starts a dockerd (its tests run one after another).
const CONCURRENCY = 2;
console.log(`test: running ${chosen.length} test files, ${CONCURRENCY} at a time`);
run(process.execPath, ['--test', `--test-concurrency=${CONCURRENCY}`, '--test-reporter=spec', ...chosen], 'test');
