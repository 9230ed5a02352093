// The local password of `onionturn client` in local-credential mode when --local-password is not
// given: random, made on first use and kept in a 0600 file so app configs survive restarts. A
// fixed default would let any web page's RTCPeerConnection use the shim (and the user's upstream
// credentials): the page can reach 127.0.0.1 but cannot read this file.
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { UsageError } from './exit-codes.js';
import { errorText } from '@onionturn/io';

/** `$XDG_CONFIG_HOME/onionturn/local-password`, else `~/.config/onionturn/local-password`. */
export function localPasswordPath(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  const xdg = env['XDG_CONFIG_HOME'];
  // The XDG spec: a relative XDG_CONFIG_HOME is invalid and ignored.
  const base = xdg !== undefined && xdg !== '' && isAbsolute(xdg) ? xdg : join(home, '.config');
  return join(base, 'onionturn', 'local-password');
}

/** 144 random bits, URL-safe (it goes into iceServers JSON and app config fields). */
export function newLocalPassword(): string {
  return randomBytes(18).toString('base64url');
}

export interface LocalPassword {
  readonly password: string;
  readonly path: string;
  /** Made now (first start) rather than read from the file. */
  readonly created: boolean;
}

/**
 * Reads the password kept at `path`, or creates the file (mode 0600, its directory 0700) with a
 * new one. `onLooseMode` hears about a file others can read; it is still used, as ssh does.
 */
export function loadOrCreateLocalPassword(path: string, onLooseMode?: (mode: number) => void): LocalPassword {
  const existing = readExisting(path, onLooseMode);
  if (existing !== undefined) return { password: existing, path, created: false };
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new UsageError(`cannot create ${dirname(path)} for the local password: ${errorText(error)}; give --local-password`);
  }
  const password = newLocalPassword();
  if (publish(path, `${password}\n`)) return { password, path, created: true };
  // Another client started at the same moment published first: both use its password.
  const raced = readExisting(path, onLooseMode);
  if (raced !== undefined) return { password: raced, path, created: false };
  throw new UsageError(`the local password file ${path} vanished while it was being created; give --local-password`);
}

/** link(2) errors of file systems without hard links: publish() falls back to an exclusive open. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Puts `text` at `path` only if nothing is there, all at once: false when another writer was
 * first. The text is written to a private temporary file and hard-linked into place, so a
 * concurrent reader sees no file or the whole file, never an empty one (which an exclusive open
 * followed by a write would show between the two steps).
 */
function publish(path: string, text: string): boolean {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writePrivate(temp, text);
  } catch (error) {
    rmSync(temp, { force: true });
    throw new UsageError(`cannot create the local password file ${path}: ${errorText(error)}; give --local-password`);
  }
  try {
    linkSync(temp, path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== undefined && NO_HARD_LINKS.has(code)) return publishWithoutLink(path, text);
    throw new UsageError(`cannot create the local password file ${path}: ${code ?? String(error)}; give --local-password`);
  } finally {
    rmSync(temp, { force: true });
  }
}

/** Exclusive create then write: still one winner, but a reader may briefly see an empty file. */
function publishWithoutLink(path: string, text: string): boolean {
  try {
    writePrivate(path, text);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    throw new UsageError(`cannot create the local password file ${path}: ${code ?? String(error)}; give --local-password`);
  }
}

/** Creates `path` (never following or replacing a file: 'wx'), mode 0600, with `text`, synced. */
function writePrivate(path: string, text: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600); // the umask may have narrowed nothing, but never widen
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readExisting(path: string, onLooseMode?: (mode: number) => void): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(`cannot read the local password file ${path}: ${errorText(error)}`);
  }
  const password = text.trim();
  if (password === '') throw new UsageError(`the local password file ${path} is empty; delete it to get a new password, or give --local-password`);
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) onLooseMode?.(mode);
  return password;
}
