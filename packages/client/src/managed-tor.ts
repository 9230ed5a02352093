// The embedded tor: a `tor` child process with its own data directory and a SocksPort tor picks,
// for users who run no tor of their own. Bootstrap progress goes to the log; stop() ends exactly
// this child (by its PID) and removes a temporary data directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { systemClock, type Clock } from './clock.js';
import type { HostPort } from './endpoints.js';
import type { Logger } from './logger.js';
import { managedTorrc, parseTorLine, torrcOwner } from './tor-config.js';

export interface ManagedTorOptions {
  readonly logger: Logger;
  /** Persistent data directory (faster later starts); default a temporary one, removed on stop. */
  readonly dataDir?: string;
  /** Extra torrc text appended to the generated torrc. */
  readonly extraConfig?: string;
  /** Give up when tor has not bootstrapped by then (default 5 minutes). */
  readonly bootstrapTimeoutMs?: number;
  /** The tor executable (default: `tor` on PATH or in /usr/sbin, /usr/bin). */
  readonly torPath?: string;
  /** Aborting it (Ctrl-C) before bootstrap is done stops tor and resolves with code 'aborted'. */
  readonly signal?: AbortSignal;
  /** Times the bootstrap deadline and the SIGKILL after SIGTERM (default the system clock). */
  readonly clock?: Clock;
  /** Each new bootstrap percentage (the status page shows it). */
  readonly onBootstrap?: (percent: number, summary: string) => void;
}

export interface ManagedTor {
  readonly pid: number;
  readonly socks: HostPort;
  readonly dataDir: string;
  stop(): Promise<void>;
}

export type ManagedTorError = { readonly code: 'tor-missing' | 'tor-failed' | 'timeout' | 'aborted'; readonly reason: string };
export type ManagedTorResult = { readonly ok: true; readonly value: ManagedTor } | { readonly ok: false; readonly error: ManagedTorError };

export const TOR_INSTALL_HINT = 'install it with: apt-get install tor';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile(); // a directory passes X_OK too
  } catch {
    return false;
  }
}

const TEMP_PREFIX = 'onionturn-tor-';
const TORRC_NAME = 'onionturn-torrc';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary tor data directories left by shims that died without cleaning up (kill -9,
 * a crash): their torrc names the owning PID, and a directory whose owner is gone is removed. It
 * holds the guard choice and keys of a tor nobody runs any more. Returns how many were removed.
 */
export function removeStaleDataDirs(dir: string = tmpdir()): number {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(TEMP_PREFIX));
  } catch {
    return 0;
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  for (const name of names) {
    const path = join(dir, name);
    let owner: number | undefined;
    try {
      // Only a real directory (not a link to one) and a real torrc, both made by this user:
      // /tmp is shared, and anyone can put an onionturn-tor-* there.
      const d = lstatSync(path);
      const f = lstatSync(join(path, TORRC_NAME));
      if (!d.isDirectory() || !f.isFile() || (uid !== undefined && (d.uid !== uid || f.uid !== uid))) continue;
      owner = torrcOwner(readFileSync(join(path, TORRC_NAME), 'utf8'));
    } catch {
      continue; // not ours to judge (no torrc: maybe being written right now)
    }
    if (owner === undefined || owner === process.pid || alive(owner)) continue;
    rmSync(path, { recursive: true, force: true });
    removed++;
  }
  return removed;
}

export function findTor(): string | undefined {
  const dirs = (process.env['PATH'] ?? '').split(delimiter).concat(['/usr/sbin', '/usr/bin']);
  return dirs
    .filter((d) => d !== '')
    .map((d) => join(d, 'tor'))
    .find(executable);
}

/** Stops the child by its PID: SIGTERM (a client tor exits at once), SIGKILL after 5 s. */
async function stopChild(child: ChildProcess, clock: Clock): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = clock.after(5000, () => child.kill('SIGKILL'));
  await exited;
  timer.cancel();
}

export function startManagedTor(opts: ManagedTorOptions): Promise<ManagedTorResult> {
  const torPath = opts.torPath ?? findTor();
  if (torPath === undefined || !executable(torPath)) {
    const where = opts.torPath === undefined ? '' : ` at ${opts.torPath}`;
    return Promise.resolve({
      ok: false,
      error: { code: 'tor-missing', reason: `tor is not installed${where}; ${TOR_INSTALL_HINT} (or pass --socks HOST:PORT of a running tor)` },
    });
  }
  if (opts.signal?.aborted) return Promise.resolve({ ok: false, error: { code: 'aborted', reason: 'stopped before tor was started' } });
  const temporary = opts.dataDir === undefined;
  if (temporary) removeStaleDataDirs();
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), TEMP_PREFIX));
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // tor refuses a data directory others can read.
  chmodSync(dataDir, 0o700);
  const torrc = join(dataDir, TORRC_NAME);
  const defaults = join(dataDir, 'onionturn-torrc-defaults');
  const cleanup = (): void => {
    if (temporary) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    writeFileSync(torrc, managedTorrc({ dataDir, owningPid: process.pid, ...(opts.extraConfig !== undefined ? { extra: opts.extraConfig } : {}) }), {
      mode: 0o600,
    });
    // An empty defaults file: the system's torrc-defaults must not add ports or daemon mode.
    writeFileSync(defaults, '', { mode: 0o600 });
  } catch (error) {
    cleanup();
    return Promise.resolve({ ok: false, error: { code: 'tor-failed', reason: `cannot write the torrc: ${(error as Error).message}` } });
  }
  let child: ChildProcess;
  try {
    child = spawn(torPath, ['-f', torrc, '--defaults-torrc', defaults], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    cleanup();
    return Promise.resolve({ ok: false, error: { code: 'tor-failed', reason: `could not start ${torPath}: ${(error as Error).message}` } });
  }
  const { logger } = opts;
  const clock = opts.clock ?? systemClock;
  const pid = child.pid;
  if (pid === undefined) {
    // The spawn failed (EACCES, ENOENT...); Node reports it as an 'error' event, which must be heard.
    child.once('error', () => undefined);
    cleanup();
    return Promise.resolve({ ok: false, error: { code: 'tor-failed', reason: `could not start ${torPath}` } });
  }
  logger.info('tor starting', { pid, dataDir: temporary ? 'temporary' : dataDir });
  // If the shim dies without stop(), take tor with it (tor's __OwningControllerProcess also does).
  const onExit = (): void => {
    if (child.exitCode === null) child.kill('SIGKILL');
    cleanup();
  };
  process.on('exit', onExit);
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= stopChild(child, clock).then(() => {
      process.removeListener('exit', onExit);
      cleanup();
      logger.info('tor stopped', { pid });
    });
    return stopped;
  };
  return new Promise((resolve) => {
    let socks: HostPort | undefined;
    let lastPercent = -1;
    const tail: string[] = [];
    let settled = false;
    const settle = (r: ManagedTorResult): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      opts.signal?.removeEventListener('abort', onAbort);
      if (r.ok) resolve(r);
      else void stop().then(() => resolve(r));
    };
    const onLine = (line: string): void => {
      tail.push(line);
      if (tail.length > 5) tail.shift();
      const ev = parseTorLine(line);
      if (!ev) return;
      if (ev.kind === 'socks') socks = { host: ev.host, port: ev.port };
      else if (ev.kind === 'bootstrap') {
        if (ev.percent !== lastPercent) {
          logger.info(`tor bootstrap ${ev.percent}%: ${ev.summary}`);
          opts.onBootstrap?.(ev.percent, ev.summary);
        }
        lastPercent = ev.percent;
        if (ev.percent === 100) {
          if (socks) settle({ ok: true, value: { pid, socks, dataDir, stop } });
          else settle({ ok: false, error: { code: 'tor-failed', reason: 'tor bootstrapped but never said which SOCKS port it opened' } });
        }
      } else if (ev.level === 'err' || settled === false) {
        logger.log(ev.level === 'err' ? 'error' : 'warn', `tor: ${ev.text}`);
      }
    };
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', onLine);
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', onLine);
    child.once('error', (err) => settle({ ok: false, error: { code: 'tor-failed', reason: `cannot run ${torPath}: ${err.message}` } }));
    child.once('exit', (code, signal) => {
      if (!settled) settle({ ok: false, error: { code: 'tor-failed', reason: `tor exited (${code ?? signal}) before it bootstrapped: ${tail.join(' | ')}` } });
      else if (!stopped) logger.error(`tor exited unexpectedly (${code ?? signal}); new flows will fail`, { pid });
    });
    // Stopped (and its temporary data directory removed) by settle, like any failure.
    const onAbort = (): void => settle({ ok: false, error: { code: 'aborted', reason: `stopped before tor finished bootstrapping (last: ${lastPercent}%)` } });
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timeoutMs = opts.bootstrapTimeoutMs ?? 300_000;
    const timer = clock.after(timeoutMs, () =>
      settle({ ok: false, error: { code: 'timeout', reason: `tor did not bootstrap within ${Math.round(timeoutMs / 1000)} s (last: ${lastPercent}%)` } }),
    );
  });
}
