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
console.log(`test: running ${chosen.length} test files`);
run(process.execPath, ['--test', '--test-reporter=spec', ...chosen], 'test');
