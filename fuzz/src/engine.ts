// The fuzz loop: replay the corpus, then mutate and run, with checks on exceptions, CPU cost and
// (in the targets) state sizes. Findings are minimised and saved to the corpus.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadCorpus, saveInput } from './corpus.js';
import { Rng } from './rng.js';
import type { Target } from './target.js';

export interface Finding {
  readonly kind: 'crash' | 'over-budget';
  readonly message: string;
  /** The minimised input. */
  readonly hex: string;
  /** Where it was saved, when saving is on. */
  readonly file: string | undefined;
}

export interface TargetReport {
  readonly target: string;
  execs: number;
  crashes: number;
  overBudget: number;
  /** Corpus entries replayed (files + built-in seeds). */
  corpus: number;
  /** Inputs kept because they did something new. */
  discovered: number;
  /** Distinct behaviours seen. */
  behaviours: number;
  cpuSeconds: number;
  slowest: { ms: number; size: number; hex: string };
  readonly findings: Finding[];
}

export interface RunOptions {
  readonly seed: number;
  /** Stop after this many executions (corpus replay included)... */
  readonly execs?: number;
  /** ...or after this many seconds. */
  readonly seconds?: number;
  /** Save findings to fuzz/corpus (default true). */
  readonly saveFindings?: boolean;
  /** Save up to this many smallest inputs of new behaviours to the corpus at the end. */
  readonly saveDiscovered?: number;
  /** Only replay the corpus and the seeds, no mutation. */
  readonly replayOnly?: boolean;
}

const MAX_POOL = 4000;
const MAX_BEHAVIOURS = 20_000;

// A full collection before a cost verdict: process CPU time counts the GC's helper threads too,
// and a concurrent marking of the fuzzer's own heap must not be billed to the input.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;
const MAX_FINDINGS = 5;

function cpuMicros(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return d.user + d.system;
}

/** A key for "the same bug": the message with numbers taken out. */
function bugKey(e: unknown): string {
  const m = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return (m.split(' | ')[0] as string).replace(/0x[0-9a-f]+|\d+/gi, 'N').slice(0, 200);
}

function runs(target: Target, input: Buffer): unknown {
  try {
    target.run(input);
    return undefined;
  } catch (e) {
    return e ?? new Error('thrown undefined');
  }
}

/** Delta debugging: drop chunks while the same bug still shows. */
export function minimise(target: Target, input: Buffer, still: (input: Buffer) => boolean, attempts = 3000): Buffer {
  let best = input;
  let tries = 0;
  // Structure first (drop attributes, records), then bytes.
  for (let progress = true; progress && target.shrink && tries < attempts;) {
    progress = false;
    for (const candidate of target.shrink(best)) {
      if (++tries >= attempts) break;
      if (candidate.length < best.length && still(candidate)) {
        best = candidate;
        progress = true;
        break;
      }
    }
  }
  let chunk = Math.max(1, best.length >> 1);
  while (chunk >= 1 && tries < attempts) {
    let changed = false;
    for (let at = 0; at < best.length && tries < attempts;) {
      const candidate = Buffer.concat([best.subarray(0, at), best.subarray(at + chunk)]);
      tries++;
      if (candidate.length < best.length && still(candidate)) {
        best = candidate;
        changed = true;
      } else {
        at += chunk;
      }
    }
    if (!changed) chunk >>= 1;
  }
  return best;
}

export async function fuzzTarget(target: Target, options: RunOptions): Promise<TargetReport> {
  await target.init?.();
  const rng = new Rng(options.seed);
  const report: TargetReport = {
    target: target.name,
    execs: 0,
    crashes: 0,
    overBudget: 0,
    corpus: 0,
    discovered: 0,
    behaviours: 0,
    cpuSeconds: 0,
    slowest: { ms: 0, size: 0, hex: '' },
    findings: [],
  };
  const save = options.saveFindings ?? true;
  const seen = new Set<string>();
  const smallest = new Map<string, Buffer>();
  const bugs = new Set<string>();
  const pool: Buffer[] = [];
  const cpuStart = process.cpuUsage();

  const record = (kind: Finding['kind'], message: string, key: string, input: Buffer, still: (b: Buffer) => boolean): void => {
    if (bugs.has(key) || report.findings.length >= MAX_FINDINGS) return;
    bugs.add(key);
    const small = minimise(target, input, still);
    const file = save
      ? saveInput(target.name, kind, small, `${kind} found by npm run fuzz (seed ${options.seed}): ${(message.split('\n')[0] as string).split(' | ')[0]}`)
      : undefined;
    report.findings.push({ kind, message, hex: small.toString('hex'), file });
    console.error(`fuzz: ${target.name}: ${kind}: ${message}\n  input ${small.toString('hex')}${file ? `\n  saved ${file}` : ''}`);
  };

  /** CPU time of one more run of `input`, the least of `n` (CPU time includes garbage collection). */
  const leastCpu = (input: Buffer, n: number): number => {
    let least = Number.POSITIVE_INFINITY;
    collectGarbage();
    for (let i = 0; i < n; i++) {
      const t = process.cpuUsage();
      runs(target, input);
      least = Math.min(least, cpuMicros(t));
    }
    return least;
  };

  const exec = (input: Buffer, fromCorpus: boolean): void => {
    report.execs++;
    // The elapsed time only picks candidates (it is cheap to read, CPU time is not); the verdict
    // on cost and the slowest-input figure are CPU time, measured again.
    const t0 = process.hrtime.bigint();
    let signature = '';
    let error: unknown;
    try {
      signature = target.run(input);
    } catch (e) {
      error = e ?? new Error('thrown undefined');
    }
    const elapsedUs = Number(process.hrtime.bigint() - t0) / 1000;
    if (error !== undefined) {
      report.crashes++;
      const key = bugKey(error);
      const message =
        error instanceof Error ? `${error.name}: ${error.message}${error.stack ? `\n${error.stack.split('\n').slice(1, 4).join('\n')}` : ''}` : String(error);
      record('crash', message, key, input, (b) => {
        const e = runs(target, b);
        return e !== undefined && bugKey(e) === key;
      });
      return;
    }
    const budget = target.budgetUs(input.length);
    if (elapsedUs > budget || elapsedUs / 1000 > report.slowest.ms) {
      const us = leastCpu(input, elapsedUs > budget ? 5 : 1);
      if (us / 1000 > report.slowest.ms) report.slowest = { ms: us / 1000, size: input.length, hex: input.toString('hex') };
      if (us > budget) {
        report.overBudget++;
        const over = (b: Buffer): boolean => leastCpu(b, 2) > target.budgetUs(b.length);
        record(
          'over-budget',
          `${(us / 1000).toFixed(2)} ms of CPU for ${input.length} bytes (budget ${(budget / 1000).toFixed(2)} ms)`,
          'over-budget',
          input,
          over,
        );
      }
    }
    if (!seen.has(signature) && seen.size < MAX_BEHAVIOURS) {
      seen.add(signature);
      if (!fromCorpus) {
        report.discovered++;
        if (pool.length < MAX_POOL) pool.push(input);
        else pool[rng.below(pool.length)] = input;
      }
    }
    const prev = smallest.get(signature);
    if (!fromCorpus && (prev === undefined || input.length < prev.length) && smallest.size < MAX_BEHAVIOURS) smallest.set(signature, input);
  };

  const started = Date.now();
  const limit = options.execs ?? Number.POSITIVE_INFINITY;
  const deadline = options.seconds !== undefined ? started + options.seconds * 1000 : Number.POSITIVE_INFINITY;
  const initial = [...loadCorpus(target.name).map((e) => e.input), ...target.seeds()];
  report.corpus = initial.length;
  for (const input of initial) {
    pool.push(input);
    exec(input, true);
  }
  if (!options.replayOnly) {
    while (report.execs < limit) {
      if ((report.execs & 127) === 0 && Date.now() >= deadline) break;
      const base = rng.pick(pool);
      exec(target.mutate(base, rng, pool), false);
    }
  }
  report.behaviours = seen.size;
  report.cpuSeconds = cpuMicros(cpuStart) / 1e6;
  if (options.saveDiscovered && options.saveDiscovered > 0) {
    for (const input of pickForCorpus(smallest, options.saveDiscovered)) {
      saveInput(target.name, 'gen', input, `kept by npm run fuzz (seed ${options.seed}): a new behaviour`);
    }
  }
  return report;
}

/**
 * Up to `k` inputs for the corpus: first a greedy cover of the behaviour tokens (answers, error
 * codes, counters, quotas: the parts of the signatures), smallest input on ties, then a spread
 * over sizes of the rest.
 */
export function pickForCorpus(bySignature: ReadonlyMap<string, Buffer>, k: number): Buffer[] {
  const entries = [...bySignature.entries()].map(([sig, input]) => ({ tokens: new Set(sig.split(/[,|]/).filter((t) => t !== '')), input }));
  const covered = new Set<string>();
  const picked: Buffer[] = [];
  const left = new Set(entries);
  while (picked.length < k && left.size > 0) {
    let best: (typeof entries)[number] | undefined;
    let gain = 0;
    for (const e of left) {
      let g = 0;
      for (const t of e.tokens) if (!covered.has(t)) g++;
      if (g > gain || (g === gain && g > 0 && best !== undefined && e.input.length < best.input.length)) {
        best = e;
        gain = g;
      }
    }
    if (!best || gain === 0) break;
    left.delete(best);
    for (const t of best.tokens) covered.add(t);
    picked.push(best.input);
  }
  const rest = [...left].map((e) => e.input).sort((a, b) => a.length - b.length);
  const step = Math.max(1, Math.floor(rest.length / Math.max(1, k - picked.length)));
  for (let i = 0; i < rest.length && picked.length < k; i += step) picked.push(rest[i] as Buffer);
  return picked;
}
