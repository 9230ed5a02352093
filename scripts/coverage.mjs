#!/usr/bin/env node
// `npm run coverage` (not part of npm test): line coverage of the built code, socket shells
// included, from V8's own block coverage (NODE_V8_COVERAGE, no coverage package). Runs every unit
// test plus a chosen set of integration tests that drive the real Node shells (servers, the shim,
// the CLI as child processes: they inherit NODE_V8_COVERAGE and write their coverage when they
// exit), then prints, per package, the lines run in its pure code (no Node I/O module imported:
// the sans-IO cores and codecs) and in its shells (files importing node:dgram, node:http, node:tls,
// node:fs, node:child_process..., or node:net for more than isIP), and the files least covered.
//   npm run coverage                    unit tests + the chosen interop tests
//   npm run coverage -- --unit          unit tests only (quick)
//   npm run coverage -- --json FILE     also write the figures as JSON
//   npm run coverage -- FILTER...       only test files whose path holds one of the strings
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { prepare, root } from './prepare.mjs';

/** Integration tests with real processes and sockets on loopback, no Tor network (minutes, not tens). */
const INTEROP = [
  'packages/server/dist/test/malformed.interop.test.js',
  'packages/server/dist/test/server-operations.interop.test.js',
  'packages/server/dist/test/server-coturn.interop.test.js',
  'packages/server/dist/test/proxy-listener.interop.test.js',
  'packages/server/dist/test/unallocated-bounds.interop.test.js',
  'packages/client/dist/test/shim.interop.test.js',
  'packages/client/dist/test/shim-faults.interop.test.js',
  'packages/client/dist/test/shim-tls.interop.test.js',
  'packages/client/dist/test/upstream-credentials.interop.test.js',
  'packages/cli/dist/test/client-command.interop.test.js',
  'packages/cli/dist/test/client-local-credentials.interop.test.js',
  'packages/cli/dist/test/credentials-serve.interop.test.js',
  'packages/cli/dist/test/probe.interop.test.js',
];
/** Packages whose src is measured. */
const PACKAGES = ['protocol', 'io', 'credentials', 'server', 'client', 'cli'];
const SHELL_MODULE = /from ['"]node:(dgram|http|https|tls|fs|fs\/promises|child_process|cluster|readline|worker_threads|dns|os)['"]/;
/** node:net for more than isIP (an address check is pure). */
const NET_IO = /import \{([^}]*)\} from ['"]node:net['"]/;
function isShell(js) {
  if (SHELL_MODULE.test(js)) return true;
  const m = NET_IO.exec(js);
  return m !== null && m[1].split(',').some((name) => !/^\s*isIP(v4|v6)?\s*$/.test(name));
}

const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const jsonAt = args.indexOf('--json');
const jsonFile = jsonAt >= 0 ? args[jsonAt + 1] : undefined;
const filters = args.filter((a, i) => !a.startsWith('--') && (jsonAt < 0 || i !== jsonAt + 1));

await prepare('coverage');
const { fileCoverage, jsFiles, loadRanges } = await import('../fuzz/dist/src/coverage.js');

function testFiles(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) testFiles(p, out);
    else if (name.endsWith('.test.js') && !/\.(interop|e2e)\.test\.js$/.test(name)) out.push(relative(root, p));
  }
  return out;
}
// Only outputs whose source still exists (tsc -b never deletes the output of removed tests).
const hasSource = (f) => existsSync(join(root, f.replace(/(^|\/)dist\//, '$1').replace(/\.js$/, '.ts')));
const unit = [...PACKAGES.map((p) => `packages/${p}/dist/test`), 'fuzz/dist/test'].flatMap((d) => testFiles(join(root, d))).filter(hasSource);
const files = [...unit, ...(unitOnly ? [] : INTEROP.filter(hasSource))].filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));

const coverageDir = mkdtempSync(join(tmpdir(), 'onionturn-coverage-'));
try {
  console.log(
    `coverage: ${files.length} test files (${unitOnly ? 'unit tests only' : `unit tests and ${INTEROP.length} interop tests`}${filters.length ? `, filtered by ${filters.join(' ')}` : ''}), one at a time`,
  );
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=dot', ...files], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, NODE_V8_COVERAGE: coverageDir },
  });
  console.log(
    `\ntests ${r.status === 0 ? 'passed' : `FAILED (exit ${r.status}): the figures below count what ran`} in ${Math.round((Date.now() - started) / 1000)} s`,
  );

  const ranges = loadRanges(coverageDir);
  const rows = [];
  const report = { unitOnly, packages: {} };
  for (const pkg of PACKAGES) {
    const dist = join(root, 'packages', pkg, 'dist', 'src');
    const measured = jsFiles(dist)
      .sort()
      .map((f) => ({ ...fileCoverage(f, ranges.get(f)), shell: isShell(readFileSync(f, 'utf8')) }));
    const sum = (list) => {
      const lines = list.reduce((n, f) => n + f.lines, 0);
      const covered = list.reduce((n, f) => n + f.covered, 0);
      return { lines, covered, percent: Math.round((1000 * covered) / Math.max(1, lines)) / 10 };
    };
    const all = sum(measured);
    const pure = sum(measured.filter((f) => !f.shell));
    const shells = sum(measured.filter((f) => f.shell));
    rows.push([pkg, all, pure, shells]);
    report.packages[pkg] = {
      all,
      pure,
      shells,
      files: measured.map((f) => ({ file: relative(root, f.file), shell: f.shell, lines: f.lines, covered: f.covered })),
    };
  }
  const cell = (s) => `${s.percent.toFixed(1)}% of ${s.lines}`.padStart(15);
  console.log('\n| package     |             all |  pure (sans-IO) | shells (Node I/O) |');
  console.log('|-------------|----------------:|----------------:|------------------:|');
  for (const [pkg, all, pure, shells] of rows) console.log(`| ${pkg.padEnd(11)} | ${cell(all)} | ${cell(pure)} | ${cell(shells).padStart(17)} |`);
  const least = Object.values(report.packages)
    .flatMap((p) => p.files)
    .filter((f) => f.lines >= 20)
    .sort((a, b) => a.covered / a.lines - b.covered / b.lines)
    .slice(0, 12);
  console.log('\nleast covered files (20+ lines):');
  for (const f of least)
    console.log(`  ${((100 * f.covered) / f.lines).toFixed(1).padStart(5)}%  ${String(f.lines).padStart(4)}  ${f.shell ? 'shell' : 'pure '}  ${f.file}`);
  if (jsonFile) {
    writeFileSync(jsonFile, JSON.stringify(report, null, 2) + '\n');
    console.log(`coverage: wrote ${jsonFile}`);
  }
  process.exitCode = r.status === 0 ? 0 : 1;
} finally {
  rmSync(coverageDir, { recursive: true, force: true });
}
