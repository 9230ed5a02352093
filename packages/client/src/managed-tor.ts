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
import { TorRestartSchedule } from './tor-restart.js';

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
  /** Each new bootstrap percentage (the status page shows it), also of a restarted tor. */
  readonly onBootstrap?: (percent: number, summary: string) => void;
  /** tor died after it bootstrapped and was started again (on the same SocksPort); `restarts` so far. */
  readonly onRestart?: (restarts: number) => void;
}

export interface ManagedTor {
  /** The running tor's PID (a new one after a restart). */
  readonly pid: number;
  /** Times tor died under the shim and was started again. */
  readonly restarts: number;
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

function spawnTor(torPath: string, torrc: string, defaults: string): ChildProcess | undefined {
  try {
    const child = spawn(torPath, ['-f', torrc, '--defaults-torrc', defaults], { stdio: ['ignore', 'pipe', 'pipe'] });
    // The spawn failed (EACCES, ENOENT...): Node reports it as an 'error' event, which must be heard.
    if (child.pid === undefined) {
      child.once('error', () => undefined);
      return undefined;
    }
    return child;
  } catch {
    return undefined;
  }
}

function onLines(child: ChildProcess, fn: (line: string) => void): void {
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', fn);
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', fn);
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
  const torrcOptions = { dataDir, owningPid: process.pid, ...(opts.extraConfig !== undefined ? { extra: opts.extraConfig } : {}) };
  try {
    writeFileSync(torrc, managedTorrc(torrcOptions), { mode: 0o600 });
    // An empty defaults file: the system's torrc-defaults must not add ports or daemon mode.
    writeFileSync(defaults, '', { mode: 0o600 });
  } catch (error) {
    cleanup();
    return Promise.resolve({ ok: false, error: { code: 'tor-failed', reason: `cannot write the torrc: ${(error as Error).message}` } });
  }
  const first = spawnTor(torPath, torrc, defaults);
  if (first === undefined) {
    cleanup();
    return Promise.resolve({ ok: false, error: { code: 'tor-failed', reason: `could not start ${torPath}` } });
  }
  const { logger } = opts;
  const clock = opts.clock ?? systemClock;
  /** The tor running now (or last): a restart replaces it. */
  let child: ChildProcess = first;
  let pid = first.pid as number;
  logger.info('tor starting', { pid, dataDir: temporary ? 'temporary' : dataDir });
  // If the shim dies without stop(), take tor with it (tor's __OwningControllerProcess also does).
  const onExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    cleanup();
  };
  process.on('exit', onExit);
  let stopped: Promise<void> | undefined;
  let restartTimer: { cancel(): void } | undefined;
  const schedule = new TorRestartSchedule(clock.monotonic());
  const stop = (): Promise<void> => {
    if (!stopped) restartTimer?.cancel();
    stopped ??= stopChild(child, clock).then(() => {
      process.removeListener('exit', onExit);
      cleanup();
      logger.info('tor stopped', { pid });
    });
    return stopped;
  };

  // After bootstrap: a tor that dies is started again on the same SocksPort and data directory
  // (its guards and consensus are still there, so it is back in seconds), with backoff.
  const died = (code: number | null, signal: NodeJS.Signals | null, socks: HostPort): void => {
    if (stopped) return;
    const delayMs = schedule.died(clock.monotonic());
    const what = code === null && signal === null ? `could not start ${torPath} again` : `tor exited unexpectedly (${code ?? signal})`;
    logger.error(`${what}; starting it again in ${delayMs / 1000} s on the same SOCKS port`, {
      pid,
      restarts: schedule.restarts,
    });
    restartTimer = clock.after(delayMs, () => restart(socks));
  };
  const restart = (socks: HostPort): void => {
    restartTimer = undefined;
    if (stopped) return;
    let next: ChildProcess | undefined;
    try {
      writeFileSync(torrc, managedTorrc({ ...torrcOptions, socks }), { mode: 0o600 });
      next = spawnTor(torPath, torrc, defaults);
    } catch {
      next = undefined;
    }
    schedule.started(clock.monotonic());
    opts.onRestart?.(schedule.restarts);
    if (next === undefined) {
      died(null, null, socks);
      return;
    }
    child = next;
    pid = next.pid as number;
    logger.info('tor restarted', { pid, restarts: schedule.restarts });
    let lastPercent = -1;
    onLines(next, (line) => {
      const ev = parseTorLine(line);
      if (ev?.kind === 'bootstrap') {
        if (ev.percent !== lastPercent) opts.onBootstrap?.(ev.percent, ev.summary);
        // Only the end of a restart's bootstrap is logged: the restart was logged already.
        if (ev.percent === 100 && lastPercent !== 100) logger.info('tor ready again', { pid, restarts: schedule.restarts });
        lastPercent = ev.percent;
      } else if (ev?.kind === 'problem' && ev.level === 'err') logger.error(`tor: ${ev.text}`);
    });
    next.once('error', () => undefined); // its exit follows and is handled there
    next.once('exit', (code, signal) => died(code, signal, socks));
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
    const managed: ManagedTor = {
      get pid() {
        return pid;
      },
      get restarts() {
        return schedule.restarts;
      },
      get socks() {
        return socks as HostPort;
      },
      dataDir,
      stop,
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
          if (socks) settle({ ok: true, value: managed });
          else settle({ ok: false, error: { code: 'tor-failed', reason: 'tor bootstrapped but never said which SOCKS port it opened' } });
        }
      } else if (ev.level === 'err' || settled === false) {
        logger.log(ev.level === 'err' ? 'error' : 'warn', `tor: ${ev.text}`);
      }
    };
    onLines(first, onLine);
    first.once('error', (err) => settle({ ok: false, error: { code: 'tor-failed', reason: `cannot run ${torPath}: ${err.message}` } }));
    first.once('exit', (code, signal) => {
      if (!settled) settle({ ok: false, error: { code: 'tor-failed', reason: `tor exited (${code ?? signal}) before it bootstrapped: ${tail.join(' | ')}` } });
      else if (socks) died(code, signal, socks);
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
