// A real Docker engine for the docker-compose tests: the machine's own engine when one answers,
// else a private dockerd started here (own data-root, exec-root, pidfile and socket; vfs storage;
// no iptables, forwarding, masquerading or bridge: containers use host networking), tracked by
// PID and stopped by stop(). When the base images can't be pulled (no registry reachable),
// stand-ins with the same tags are built from Debian packages: `debootstrap --variant=minbase
// bookworm` (+ the host's own Node 20 for node:20-bookworm-slim), cached as tarballs under
// <repo>/.cache/docker-base so that only the first run pays for debootstrap.
import { spawn, type SpawnOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ProcessGroup, alive, sleep } from '@onionturn/lab';
import { repoRoot } from '@onionturn/lab';
import { TOOLS, findExecutable, requireTool } from '@onionturn/lab';

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly timeoutMs?: number;
  readonly input?: string;
}

/** Runs a command to completion (killing exactly it on timeout) and collects its output. */
export function runCommand(command: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const started = Date.now();
  const spawnOptions: SpawnOptions = { stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: options.env ?? process.env };
  if (options.cwd !== undefined) spawnOptions.cwd = options.cwd;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, spawnOptions);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timeoutMs = options.timeoutMs ?? 120_000;
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
    if (options.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {}); // a child that exits without reading its input
      child.stdin.end(options.input);
    }
  });
}

/** Like runCommand, but throws (with the output) unless the command exits 0. */
export async function runChecked(command: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const r = await runCommand(command, args, options);
  if (r.code !== 0) {
    const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-25).join('\n');
    throw new Error(`'${command} ${args.join(' ')}' exited ${String(r.code)}:\n${tail}`);
  }
  return r;
}

function root(): string {
  const dir = repoRoot();
  if (!dir) throw new Error('cannot find the onionturn workspace root (package.json with workspaces) above the testkit');
  return dir;
}

/**
 * Where the private dockerd's image store (`docker/`) and the base-image tarballs
 * (`docker-base/`) are kept between runs: $ONIONTURN_DOCKER_CACHE, else
 * $XDG_CACHE_HOME/onionturn (~/.cache/onionturn). Outside the checkout, so that a fresh clone
 * (CI clones afresh every time) reuses the last run's base images and layers instead of paying
 * ~2-3 minutes for debootstrap, the base images and the dependency layer again.
 */
export function dockerCacheDir(): string {
  const given = process.env['ONIONTURN_DOCKER_CACHE'];
  if (given) return given;
  return join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'onionturn');
}

/** The private dockerd of another test holds `dataRoot`. */
function heldByOther(dataRoot: string): number | undefined {
  const ownerFile = `${dataRoot}.owner`;
  if (!existsSync(ownerFile)) return undefined;
  const other = Number(readFileSync(ownerFile, 'utf8').trim());
  return Number.isInteger(other) && other > 0 && alive(other) ? other : undefined;
}

export interface DockerEngine {
  /** The DOCKER_HOST value, e.g. unix:///tmp/onionturn-dockerd-x/docker.sock. */
  readonly host: string;
  /** process.env with DOCKER_HOST set: pass to docker and docker-compose. */
  readonly env: NodeJS.ProcessEnv;
  /** Absolute path of the docker client. */
  readonly docker: string;
  /** PID of the private dockerd started here, or undefined when an existing engine is used. */
  readonly pid: number | undefined;
  /** Runs `docker ARGS` against this engine. */
  run(args: readonly string[], options?: RunOptions): Promise<CommandResult>;
  /** Stops the private dockerd (exactly that PID) and removes its run directory; no-op otherwise. */
  stop(): Promise<void>;
}

export interface EngineOptions {
  /**
   * Image store of a private dockerd; default dockerCacheDir()/docker (kept between runs: a
   * cache), or <repo>/.cache/docker while another checkout's test holds that one.
   */
  readonly dataRoot?: string;
  /** How long a private dockerd may take to answer. Default 60 s. */
  readonly startTimeoutMs?: number;
}

async function answers(docker: string, host: string | undefined): Promise<boolean> {
  const env = { ...process.env };
  if (host !== undefined) env['DOCKER_HOST'] = host;
  else delete env['DOCKER_HOST'];
  const r = await runCommand(docker, ['version', '--format', '{{.Server.Version}}'], { env, timeoutMs: 15_000 }).catch(() => undefined);
  return r?.code === 0 && r.stdout.trim().length > 0;
}

function engine(docker: string, host: string, pid: number | undefined, stop: () => Promise<void>): DockerEngine {
  const env = { ...process.env, DOCKER_HOST: host };
  return {
    host,
    env,
    docker,
    pid,
    run: (args, options = {}) => runCommand(docker, args, { ...options, env: { ...env, ...options.env } }),
    stop,
  };
}

/**
 * A Docker engine to talk to: $DOCKER_HOST or /var/run/docker.sock when they answer, else a
 * private dockerd started here (installing Debian docker.io first when root and missing).
 */
export async function ensureDockerEngine(options: EngineOptions = {}): Promise<DockerEngine> {
  const docker = findExecutable('docker') ?? requireTool(TOOLS.docker);
  const given = process.env['DOCKER_HOST'];
  if (given && (await answers(docker, given))) return engine(docker, given, undefined, async () => {});
  if (!given && existsSync('/var/run/docker.sock') && (await answers(docker, undefined))) {
    return engine(docker, 'unix:///var/run/docker.sock', undefined, async () => {});
  }
  return startPrivateDockerd(docker, options);
}

async function startPrivateDockerd(docker: string, options: EngineOptions): Promise<DockerEngine> {
  const dockerd = requireTool(TOOLS.dockerd);
  let dataRoot = options.dataRoot ?? join(dockerCacheDir(), 'docker');
  // Two daemons on one data-root corrupt it. The shared default may be held by a test of
  // another checkout on this machine: then this checkout's own store (slower: a cold cache).
  if (options.dataRoot === undefined && heldByOther(dataRoot) !== undefined) dataRoot = join(root(), '.cache', 'docker');
  const other = heldByOther(dataRoot);
  if (other !== undefined) throw new Error(`another private dockerd (pid ${other}) is using ${dataRoot}; wait for its test to finish`);
  mkdirSync(dataRoot, { recursive: true });
  const ownerFile = `${dataRoot}.owner`;
  // exec-root and the socket live in a short /tmp path (unix socket paths are limited to 108 bytes).
  const runDir = mkdtempSync(join(tmpdir(), 'onionturn-dockerd-'));
  const socket = join(runDir, 'docker.sock');
  const host = `unix://${socket}`;
  const group = new ProcessGroup();
  const daemon = group.spawn('dockerd', dockerd, [
    '--data-root',
    dataRoot,
    '--exec-root',
    join(runDir, 'exec'),
    '--pidfile',
    join(runDir, 'docker.pid'),
    '-H',
    host,
    '--storage-driver=vfs',
    '--iptables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    '--bridge=none',
  ]);
  writeFileSync(ownerFile, `${daemon.pid}\n`);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // dockerd stops its containers and its containerd on SIGTERM; give it time to do so.
    await group.stopAll(45_000);
    await unmountUnder(runDir);
    rmSync(runDir, { recursive: true, force: true });
    rmSync(ownerFile, { force: true });
  };
  try {
    const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
    for (;;) {
      if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) {
        throw new Error(
          `dockerd exited during start (${String(daemon.child.exitCode ?? daemon.child.signalCode)}):\n${daemon.output().split('\n').slice(-15).join('\n')}`,
        );
      }
      if (existsSync(socket) && (await answers(docker, host))) break;
      if (Date.now() > deadline) throw new Error(`dockerd did not answer on ${socket} in time:\n${daemon.output().split('\n').slice(-15).join('\n')}`);
      await sleep(250);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return engine(docker, host, daemon.pid, stop);
}

/** dockerd leaves mounts (e.g. exec-root/netns/default) behind: unmount those under dir, deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) await runCommand('umount', ['-l', point], { timeoutMs: 15_000 });
}

export interface BaseImage {
  readonly tag: string;
  /** present: already in the engine; pulled: from a registry; imported: the local stand-in. */
  readonly source: 'present' | 'pulled' | 'imported';
  readonly ms: number;
}

export interface BaseImageOptions {
  /** Where rootfs tarballs are cached; default dockerCacheDir()/docker-base. */
  readonly cacheDir?: string;
  /** Debian mirror for debootstrap; default http://deb.debian.org/debian. */
  readonly mirror?: string;
  /**
   * Extra CA certificates the stand-in node image trusts (NODE_EXTRA_CA_CERTS inside it); default
   * the host's NODE_EXTRA_CA_CERTS. Machines behind a TLS-intercepting egress proxy need it for
   * `npm ci` in image builds, as the host's own npm does; a pulled image is left as it is.
   */
  readonly extraCaFile?: string;
  /** Called with one line per slow step (debootstrap, import), for test logs. */
  readonly log?: (line: string) => void;
}

export const DEBIAN_BASE_TAG = 'debian:bookworm-slim';
export const NODE_BASE_TAG = 'node:20-bookworm-slim';

async function haveImage(engine: DockerEngine, tag: string): Promise<boolean> {
  return (await engine.run(['image', 'inspect', '--format', '{{.Id}}', tag], { timeoutMs: 30_000 })).code === 0;
}

async function presentOrPulled(engine: DockerEngine, tag: string): Promise<BaseImage['source'] | undefined> {
  if (await haveImage(engine, tag)) return 'present';
  const pulled = await engine.run(['pull', '--quiet', tag], { timeoutMs: 300_000 });
  return pulled.code === 0 ? 'pulled' : undefined;
}

function cacheDirOf(options: BaseImageOptions): string {
  const dir = options.cacheDir ?? join(dockerCacheDir(), 'docker-base');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * The Debian bookworm minbase root filesystem as a tarball (cached): debootstrap once (~35-70 s),
 * then documentation, apt lists and downloaded .debs removed as in the official slim images.
 */
export async function debianRootfsTarball(options: BaseImageOptions = {}): Promise<string> {
  const dir = cacheDirOf(options);
  const tarball = join(dir, 'debian-bookworm-minbase.tar');
  if (existsSync(tarball)) return tarball;
  const debootstrap = requireTool(TOOLS.debootstrap);
  const rootfs = join(dir, 'rootfs.partial');
  rmSync(rootfs, { recursive: true, force: true });
  options.log?.(`debootstrap --variant=minbase bookworm into ${rootfs} (once; cached as ${tarball})`);
  try {
    await runChecked(debootstrap, ['--variant=minbase', 'bookworm', rootfs, options.mirror ?? 'http://deb.debian.org/debian'], { timeoutMs: 900_000 });
    for (const sub of ['var/cache/apt/archives', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/info']) {
      rmSync(join(rootfs, sub), { recursive: true, force: true });
      mkdirSync(join(rootfs, sub), { recursive: true });
    }
    mkdirSync(join(rootfs, 'var/cache/apt/archives/partial'), { recursive: true });
    mkdirSync(join(rootfs, 'var/lib/apt/lists/partial'), { recursive: true });
    await tarDirectory(rootfs, tarball);
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
  return tarball;
}

/**
 * Debian minbase + the host's Node (process.execPath and its npm) at the paths the official
 * node image uses (/usr/local/bin/node, /usr/local/lib/node_modules/npm), plus its `node` user
 * (uid 1000). Cached per Node version.
 */
export async function nodeRootfsTarball(options: BaseImageOptions = {}): Promise<string> {
  const dir = cacheDirOf(options);
  const ca = extraCa(options);
  const caTag = ca ? `-ca${createHash('sha256').update(ca).digest('hex').slice(0, 8)}` : '';
  const tarball = join(dir, `node-${process.version}${caTag}-bookworm-minbase.tar`);
  if (existsSync(tarball)) return tarball;
  const debianTar = await debianRootfsTarball(options);
  const rootfs = join(dir, 'node-rootfs.partial');
  rmSync(rootfs, { recursive: true, force: true });
  mkdirSync(rootfs, { recursive: true });
  options.log?.(`adding the host's node ${process.version} to a copy of the Debian rootfs`);
  try {
    await runChecked('tar', ['-C', rootfs, '-xf', debianTar], { timeoutMs: 300_000 });
    const npmDir = hostNpmDir();
    mkdirSync(join(rootfs, 'usr/local/bin'), { recursive: true });
    mkdirSync(join(rootfs, 'usr/local/lib/node_modules'), { recursive: true });
    cpSync(realpathSync(process.execPath), join(rootfs, 'usr/local/bin/node'));
    cpSync(npmDir, join(rootfs, 'usr/local/lib/node_modules/npm'), { recursive: true });
    await runChecked('ln', ['-s', '../lib/node_modules/npm/bin/npm-cli.js', join(rootfs, 'usr/local/bin/npm')]);
    await runChecked('ln', ['-s', '../lib/node_modules/npm/bin/npx-cli.js', join(rootfs, 'usr/local/bin/npx')]);
    if (ca) {
      mkdirSync(join(rootfs, 'usr/local/share/ca-certificates'), { recursive: true });
      writeFileSync(join(rootfs, HOST_CA_PATH), ca);
    }
    await runChecked('chroot', [
      rootfs,
      '/bin/sh',
      '-c',
      'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node && node --version',
    ]);
    await tarDirectory(rootfs, tarball);
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
  return tarball;
}

/** Where the stand-in keeps the host's extra CA certificates. */
const HOST_CA_PATH = 'usr/local/share/ca-certificates/onionturn-host-extra-ca.crt';

function extraCa(options: BaseImageOptions): Buffer | undefined {
  const file = options.extraCaFile ?? process.env['NODE_EXTRA_CA_CERTS'];
  return file && existsSync(file) ? readFileSync(file) : undefined;
}

function hostNpmDir(): string {
  const candidates = [join(dirname(realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm')];
  const npm = findExecutable('npm');
  if (npm) candidates.push(join(dirname(realpathSync(npm)), '..'));
  for (const c of candidates) {
    if (existsSync(join(c, 'bin', 'npm-cli.js'))) return realpathSync(c);
  }
  throw new Error(`cannot find the host's npm install dir (looked in ${candidates.join(', ')})`);
}

async function tarDirectory(dir: string, tarball: string): Promise<void> {
  const partial = `${tarball}.partial`;
  await runChecked('tar', ['--numeric-owner', '-C', dir, '-cf', partial, '.'], { timeoutMs: 300_000 });
  renameSync(partial, tarball);
}

async function importTarball(engine: DockerEngine, tarball: string, tag: string, changes: readonly string[]): Promise<void> {
  const args = ['import', ...changes.flatMap((c) => ['--change', c]), tarball, tag];
  await runChecked(engine.docker, args, { env: engine.env, timeoutMs: 600_000 });
}

/** `debian:bookworm-slim` in the engine: present, pulled, or imported from the debootstrap stand-in. */
export async function ensureDebianBaseImage(engine: DockerEngine, options: BaseImageOptions = {}): Promise<BaseImage> {
  const started = Date.now();
  const source = await presentOrPulled(engine, DEBIAN_BASE_TAG);
  if (source) return { tag: DEBIAN_BASE_TAG, source, ms: Date.now() - started };
  const tarball = await debianRootfsTarball(options);
  options.log?.(`docker import ${tarball} as ${DEBIAN_BASE_TAG} (${Math.round(statSync(tarball).size / 1048576)} MiB)`);
  await importTarball(engine, tarball, DEBIAN_BASE_TAG, ['CMD ["bash"]']);
  return { tag: DEBIAN_BASE_TAG, source: 'imported', ms: Date.now() - started };
}

/** `node:20-bookworm-slim` in the engine: present, pulled, or the stand-in (Debian + host Node). */
export async function ensureNodeBaseImage(engine: DockerEngine, options: BaseImageOptions = {}): Promise<BaseImage> {
  const started = Date.now();
  const source = await presentOrPulled(engine, NODE_BASE_TAG);
  if (source) return { tag: NODE_BASE_TAG, source, ms: Date.now() - started };
  if (!process.version.startsWith('v20.')) throw new Error(`the ${NODE_BASE_TAG} stand-in copies the host's Node, which is ${process.version}, not 20`);
  const tarball = await nodeRootfsTarball(options);
  options.log?.(`docker import ${tarball} as ${NODE_BASE_TAG} (${Math.round(statSync(tarball).size / 1048576)} MiB)`);
  const changes = ['ENV NODE_VERSION=' + process.version.slice(1), 'CMD ["node"]'];
  if (extraCa(options)) changes.unshift(`ENV NODE_EXTRA_CA_CERTS=/${HOST_CA_PATH}`);
  await importTarball(engine, tarball, NODE_BASE_TAG, changes);
  return { tag: NODE_BASE_TAG, source: 'imported', ms: Date.now() - started };
}

/** A scratch directory for one test run (removed by the caller). */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
