// npm run fuzz -- [--execs N | --seconds N] [--target NAME[,NAME]] [--json FILE] [--seed N]
//                 [--save-corpus K] [--replay]
// Runs the targets one after another in this one process; the budget is split by target weight.
import { writeFileSync } from 'node:fs';
import { fuzzTarget, type TargetReport } from './engine.js';
import { TARGETS } from './targets/index.js';

interface Args {
  execs: number | undefined;
  seconds: number | undefined;
  targets: string[];
  json: string | undefined;
  seed: number;
  saveCorpus: number;
  replay: boolean;
}

const USAGE = 'usage: npm run fuzz -- [--execs N | --seconds N] [--target NAME[,NAME]] [--json FILE] [--seed N] [--save-corpus K] [--replay]';

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { execs: undefined, seconds: undefined, targets: [], json: undefined, seed: 1, saveCorpus: 0, replay: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    const num = (): number => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < 0) throw new Error(`${flag} needs a number\n${USAGE}`);
      return v;
    };
    switch (flag) {
      case '--execs':
        args.execs = Math.floor(num());
        break;
      case '--seconds':
        args.seconds = num();
        break;
      case '--target':
        args.targets.push(...value().split(','));
        break;
      case '--json':
        args.json = value();
        break;
      case '--seed':
        args.seed = Math.floor(num());
        break;
      case '--save-corpus':
        args.saveCorpus = Math.floor(num());
        break;
      case '--replay':
        args.replay = true;
        break;
      case '--help':
        console.log(USAGE + '\ntargets: ' + TARGETS.map((t) => t.name).join(', '));
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument '${a}'\n${USAGE}`);
    }
  }
  if (args.execs === undefined && args.seconds === undefined && !args.replay) args.seconds = 60;
  return args;
}

function table(reports: readonly TargetReport[]): string {
  const rows = [['target', 'execs', 'crashes', 'over budget', 'corpus', 'kept', 'behaviours', 'cpu s', 'execs/s', 'slowest ms', 'slowest bytes']];
  for (const r of reports) {
    rows.push([
      r.target,
      String(r.execs),
      String(r.crashes),
      String(r.overBudget),
      String(r.corpus),
      String(r.discovered),
      String(r.behaviours),
      r.cpuSeconds.toFixed(1),
      String(Math.round(r.execs / Math.max(r.cpuSeconds, 1e-3))),
      r.slowest.ms.toFixed(2),
      String(r.slowest.size),
    ]);
  }
  const total = reports.reduce((n, r) => n + r.execs, 0);
  const crashes = reports.reduce((n, r) => n + r.crashes, 0);
  const over = reports.reduce((n, r) => n + r.overBudget, 0);
  const cpu = reports.reduce((n, r) => n + r.cpuSeconds, 0);
  rows.push(['total', String(total), String(crashes), String(over), '', '', '', cpu.toFixed(1), String(Math.round(total / Math.max(cpu, 1e-3))), '', '']);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] as string).length)));
  const line = (r: string[]): string => '| ' + r.map((v, c) => (c === 0 ? v.padEnd(widths[c] as number) : v.padStart(widths[c] as number))).join(' | ') + ' |';
  return [
    line(rows[0] as string[]),
    '|' + widths.map((w, c) => (c === 0 ? '-'.repeat(w + 1) + '-' : '-'.repeat(w + 1) + ':')).join('|') + '|',
    ...rows.slice(1).map(line),
  ].join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const chosen =
    args.targets.length === 0
      ? TARGETS
      : args.targets.map((n) => TARGETS.find((t) => t.name === n) ?? fail(`unknown target '${n}'; targets: ${TARGETS.map((t) => t.name).join(', ')}`));
  const reports: TargetReport[] = [];
  const weights = chosen.reduce((n, t) => n + (t.weight ?? 1), 0);
  let execsLeft = args.execs;
  for (const [i, target] of chosen.entries()) {
    const share = (n: number | undefined): number | undefined => (n === undefined ? undefined : (n * (target.weight ?? 1)) / weights);
    // The last target also takes what rounding left, so --execs N runs exactly N.
    const execs =
      args.execs === undefined || execsLeft === undefined ? undefined : i === chosen.length - 1 ? execsLeft : Math.floor(share(args.execs) as number);
    if (execs !== undefined && execsLeft !== undefined) execsLeft -= execs;
    const seconds = share(args.seconds);
    console.error(
      `fuzz: ${target.name} (${args.replay ? 'corpus only' : execs !== undefined ? `${Math.floor(execs)} execs` : `${seconds?.toFixed(0)} s`}, seed ${args.seed})`,
    );
    reports.push(
      await fuzzTarget(target, {
        seed: args.seed,
        ...(execs !== undefined ? { execs: Math.floor(execs) } : {}),
        ...(seconds !== undefined ? { seconds } : {}),
        saveDiscovered: args.saveCorpus,
        replayOnly: args.replay,
      }),
    );
  }
  console.log(table(reports));
  const crashes = reports.reduce((n, r) => n + r.crashes, 0);
  const overBudget = reports.reduce((n, r) => n + r.overBudget, 0);
  if (args.json) {
    const targets = Object.fromEntries(
      reports.map((r) => [r.target, { ...r, slowest: { ms: Number(r.slowest.ms.toFixed(3)), size: r.slowest.size, hex: r.slowest.hex } }]),
    );
    writeFileSync(
      args.json,
      JSON.stringify({ seed: args.seed, execs: reports.reduce((n, r) => n + r.execs, 0), crashes, overBudget, node: process.version, targets }, null, 2) + '\n',
    );
    console.error(`fuzz: wrote ${args.json}`);
  }
  process.exitCode = crashes + overBudget > 0 ? 1 : 0;
}

function fail(message: string): never {
  throw new Error(message);
}

main().catch((e: unknown) => {
  console.error(`fuzz: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 2;
});
