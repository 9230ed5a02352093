// Shared by npm test / npm start / benchmarks: install npm packages when missing, then build, and
// (npm start, the whole npm test) install the Debian packages the run needs. Each step is said
// before it happens, with progress, so a slow mirror does not look like a hang.
// Run directly (`node scripts/prepare.mjs`) it installs npm packages and builds, then exits.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = join(fileURLToPath(import.meta.url), '..', '..');

export function run(cmd, args, what = 'prepare') {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root });
  if (r.status !== 0) {
    console.error(`${what}: '${cmd} ${args.join(' ')}' failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}

const seconds = (t0) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

/** npm packages when missing or stale, then `tsc -b` with a line per project it builds. */
export async function prepare(what = 'prepare') {
  const installed = join(root, 'node_modules', '.package-lock.json');
  // Missing, or older than the lockfile (a pull changed dependencies or workspace bins).
  if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(join(root, 'package-lock.json')).mtimeMs) {
    const t0 = Date.now();
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
    const count = Object.entries(lock.packages ?? {}).filter(([k, v]) => k.startsWith('node_modules/') && v.link !== true).length;
    console.log(`${what}: installing ${count} npm packages (npm ci, the versions in package-lock.json; first run only)`);
    run('npm', ['ci', '--no-audit', '--no-fund'], what);
    console.log(`${what}: npm packages installed in ${seconds(t0)}`);
  }
  await build(what);
}

/** `tsc -b --verbose`, its output boiled down to one line per project built. */
function build(what) {
  const t0 = Date.now();
  console.log(`${what}: building the TypeScript workspace (tsc -b; only what changed is rebuilt)`);
  return new Promise((resolve) => {
    const tsc = spawn(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', '--verbose'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let total = 0;
    let built = 0;
    let listing = false;
    const errors = [];
    createInterface({ input: tsc.stdout }).on('line', (line) => {
      if (/Projects in this build:/.test(line)) listing = true;
      else if (listing && /^\s+\* /.test(line)) total++;
      else if (listing && line.trim() === '') listing = false;
      const m = /Building project '([^']+)'/.exec(line);
      if (m) console.log(`${what}:   building ${relative(root, join(m[1], '..')) || '.'} (${++built} of at most ${total})`);
      else if (/error TS\d+/.test(line)) errors.push(line);
    });
    tsc.on('exit', (code) => {
      if (code !== 0) {
        for (const e of errors) console.error(e);
        console.error(`${what}: the build failed (tsc -b exit ${code}); run npm run build to see it whole`);
        process.exit(code ?? 1);
      }
      console.log(`${what}: build ${built === 0 ? 'up to date' : `done (${built} project${built === 1 ? '' : 's'})`} in ${seconds(t0)}`);
      resolve();
    });
  });
}

/**
 * Installs the Debian packages of the named tools (keys of the lab's TOOLS) that are missing, one
 * by one, each said first (all of them without names: the whole npm test). Without root or apt-get it only says what to install: the tool's
 * first user then fails with the same command (requireTool). Call after prepare() (it reads the
 * built lab package).
 */
export async function ensureDebianPackages(what, toolNames = undefined) {
  const { TOOLS, findExecutable } = await import(pathToFileURL(join(root, 'packages', 'lab', 'dist', 'src', 'tools.js')).href);
  const missing = [];
  const needed = [];
  for (const name of toolNames ?? Object.keys(TOOLS)) {
    const spec = TOOLS[name];
    if (spec === undefined) throw new Error(`prepare: no tool named ${name} in packages/lab/src/tools.ts`);
    if (!needed.includes(spec.debianPackage)) needed.push(spec.debianPackage);
    if (!findExecutable(spec.command) && !missing.includes(spec.debianPackage)) missing.push(spec.debianPackage);
  }
  if (missing.length === 0) {
    console.log(`${what}: Debian packages needed: ${needed.join(', ')} (all installed)`);
    return;
  }
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !findExecutable('apt-get')) {
    console.log(`${what}: missing Debian packages: ${missing.join(', ')}; install them with: sudo apt-get install -y ${missing.join(' ')}`);
    return;
  }
  console.log(
    `${what}: installing ${missing.length} Debian package${missing.length === 1 ? '' : 's'} with apt-get: ${missing.join(', ')} (downloads; minutes on a slow mirror)`,
  );
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let t0 = Date.now();
  console.log(`${what}:   apt-get update (package lists)`);
  spawnSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  console.log(`${what}:   package lists read in ${seconds(t0)}`);
  for (const [i, pkg] of missing.entries()) {
    t0 = Date.now();
    console.log(`${what}:   (${i + 1}/${missing.length}) apt-get install ${pkg}`);
    const r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', pkg], { stdio: ['ignore', 'inherit', 'inherit'], env });
    if (r.status !== 0) {
      console.error(`${what}: apt-get install ${pkg} failed (exit ${r.status ?? r.signal}); install it by hand: apt-get install -y ${pkg}`);
      process.exit(1);
    }
    console.log(`${what}:   (${i + 1}/${missing.length}) ${pkg} installed in ${seconds(t0)}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await prepare();
