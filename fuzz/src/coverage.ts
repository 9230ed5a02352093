// Line coverage from V8's own block coverage (NODE_V8_COVERAGE), without a coverage package:
//   node fuzz/dist/src/coverage.js COVERAGE_DIR DIST_DIR...
// A line counts as run when the innermost V8 range holding its first character ran. Lines that
// hold nothing to run (blank, comments, lone brackets) are left out. Figures are for the built
// JavaScript (tsc keeps statements one-to-one, types and imports of types drop out), which is
// what ran; every file under DIST_DIR counts, loaded or not.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Range {
  readonly startOffset: number;
  readonly endOffset: number;
  readonly count: number;
}
interface ScriptCoverage {
  readonly url: string;
  readonly functions: readonly { readonly ranges: readonly Range[] }[];
}

export interface FileCoverage {
  readonly file: string;
  readonly lines: number;
  readonly covered: number;
  readonly uncovered: readonly number[];
}

export function jsFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) jsFiles(p, out);
    else if (name.endsWith('.js')) out.push(p);
  }
  return out;
}

/** Ranges of every run of the same script, merged: a range ran if it ran in any process. */
export function loadRanges(coverageDir: string): Map<string, Range[]> {
  const byFile = new Map<string, Range[]>();
  for (const name of readdirSync(coverageDir)) {
    if (!name.endsWith('.json')) continue;
    const data = JSON.parse(readFileSync(join(coverageDir, name), 'utf8')) as { result: ScriptCoverage[] };
    for (const script of data.result) {
      if (!script.url.startsWith('file://')) continue;
      const file = fileURLToPath(script.url);
      const list = byFile.get(file) ?? [];
      for (const f of script.functions) list.push(...f.ranges);
      byFile.set(file, list);
    }
  }
  return byFile;
}

const NOTHING_TO_RUN = /^\s*(\/\/.*|\/\*.*|\*.*|[\])};,]*)\s*$/;

export function fileCoverage(file: string, ranges: readonly Range[] | undefined): FileCoverage {
  const text = readFileSync(file, 'utf8');
  const counts = new Int32Array(text.length).fill(ranges ? -1 : 0);
  if (ranges) {
    // Outer ranges first, inner ones override; the same range from several runs: any count wins.
    const sorted = [...ranges].sort((a, b) => b.endOffset - b.startOffset - (a.endOffset - a.startOffset) || a.count - b.count);
    for (const r of sorted) counts.fill(r.count > 0 ? 1 : 0, r.startOffset, Math.min(r.endOffset, text.length));
  }
  let lines = 0;
  let covered = 0;
  const uncovered: number[] = [];
  let offset = 0;
  text.split('\n').forEach((line, i) => {
    const start = offset;
    offset += line.length + 1;
    if (NOTHING_TO_RUN.test(line) || line.startsWith('//# sourceMappingURL')) return;
    const first = start + line.search(/\S/);
    lines++;
    if ((counts[first] ?? 0) !== 0) covered++;
    else uncovered.push(i + 1);
  });
  return { file, lines, covered, uncovered };
}

function main(): void {
  const argv = process.argv.slice(2);
  // --exclude NAME[,NAME]: files left out of a second total (e.g. the socket shell of a sans-IO core).
  const at = argv.indexOf('--exclude');
  const excluded = at >= 0 ? (argv.splice(at, 2)[1] ?? '').split(',') : [];
  const [coverageDir, ...dirs] = argv;
  if (!coverageDir || dirs.length === 0) {
    console.error('usage: node fuzz/dist/src/coverage.js COVERAGE_DIR DIST_DIR...');
    process.exit(2);
  }
  const ranges = loadRanges(coverageDir);
  for (const dir of dirs) {
    const files = jsFiles(resolve(dir))
      .sort()
      .map((f) => fileCoverage(f, ranges.get(f)));
    const lines = files.reduce((n, f) => n + f.lines, 0);
    const covered = files.reduce((n, f) => n + f.covered, 0);
    console.log(`\n${dir}: ${((100 * covered) / Math.max(1, lines)).toFixed(1)}% of ${lines} lines`);
    if (excluded.length > 0) {
      const kept = files.filter((f) => !excluded.some((e) => f.file.endsWith(`/${e}`)));
      const kl = kept.reduce((n, f) => n + f.lines, 0);
      const kc = kept.reduce((n, f) => n + f.covered, 0);
      console.log(`${dir} without ${excluded.join(', ')}: ${((100 * kc) / Math.max(1, kl)).toFixed(1)}% of ${kl} lines`);
    }
    for (const f of files)
      console.log(
        `  ${((100 * f.covered) / Math.max(1, f.lines)).toFixed(1).padStart(5)}%  ${String(f.lines).padStart(4)}  ${f.file.slice(resolve(dir).length + 1)}`,
      );
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
