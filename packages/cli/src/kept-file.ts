// A small value kept in a private file under the user's config directory (the local password,
// the status page's port): read when it is there, otherwise made once and published atomically,
// so two clients starting at the same moment agree on one value and neither reads a half-written
// file. Every failure is a UsageError naming the file and what to give instead.
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { errorText } from '@onionturn/io';
import { UsageError } from './exit-codes.js';

export interface KeptValue<T> {
  /** What the file is, in messages: "the local password file". */
  readonly what: string;
  /** What the user can give instead, in messages: "give --local-password". */
  readonly instead: string;
  /** A new value, as the file's text (one line). */
  make(): string;
  /** The value in the file's (trimmed) text; undefined when the text is no such value. */
  parse(text: string): T | undefined;
  /** What is wrong with a file parse() refused, in messages: "is empty". */
  readonly invalid: string;
  /** Hears about a file others can read; it is still used, as ssh does. */
  readonly onLooseMode?: (mode: number) => void;
}

/** The value kept at `path`, or a new one published there (mode 0600, its directory 0700). */
export function loadOrCreateKept<T>(path: string, kept: KeptValue<T>): { value: T; created: boolean } {
  const existing = readKept(path, kept);
  if (existing !== undefined) return { value: existing, created: false };
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new UsageError(`cannot create ${dirname(path)} for ${kept.what} ${path}: ${errorText(error)}; ${kept.instead}`);
  }
  const text = kept.make();
  if (publish(path, `${text}\n`, kept)) return { value: parsed(path, text, kept), created: true };
  // Another client started at the same moment published first: both use its value.
  const raced = readKept(path, kept);
  if (raced !== undefined) return { value: raced, created: false };
  throw new UsageError(`${kept.what} ${path} vanished while it was being created; ${kept.instead}`);
}

function parsed<T>(path: string, text: string, kept: KeptValue<T>): T {
  const v = kept.parse(text);
  if (v === undefined) throw new UsageError(`${kept.what} ${path} ${kept.invalid}; ${kept.instead}`);
  return v;
}

/** link(2) errors of file systems without hard links: publish() falls back to an exclusive open. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Puts `text` at `path` only if nothing is there, all at once: false when another writer was
 * first. The text is written to a private temporary file and hard-linked into place, so a
 * concurrent reader sees no file or the whole file, never an empty one (which an exclusive open
 * followed by a write would show between the two steps).
 */
function publish(path: string, text: string, kept: KeptValue<unknown>): boolean {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writePrivate(temp, text);
  } catch (error) {
    rmSync(temp, { force: true });
    throw new UsageError(`cannot create ${kept.what} ${path}: ${errorText(error)}; ${kept.instead}`);
  }
  try {
    linkSync(temp, path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== undefined && NO_HARD_LINKS.has(code)) return publishWithoutLink(path, text, kept);
    throw new UsageError(`cannot create ${kept.what} ${path}: ${code ?? String(error)}; ${kept.instead}`);
  } finally {
    rmSync(temp, { force: true });
  }
}

/** Exclusive create then write: still one winner, but a reader may briefly see an empty file. */
function publishWithoutLink(path: string, text: string, kept: KeptValue<unknown>): boolean {
  try {
    writePrivate(path, text);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    throw new UsageError(`cannot create ${kept.what} ${path}: ${code ?? String(error)}; ${kept.instead}`);
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

function readKept<T>(path: string, kept: KeptValue<T>): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(`cannot read ${kept.what} ${path}: ${errorText(error)}; ${kept.instead}`);
  }
  const value = parsed(path, text.trim(), kept);
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) kept.onLooseMode?.(mode);
  return value;
}
