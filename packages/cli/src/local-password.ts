// The local password of `onionturn client` in local-credential mode when --local-password is not
// given: random, made on first use and kept in a 0600 file so app configs survive restarts. A
// fixed default would let any web page's RTCPeerConnection use the shim (and the user's upstream
// credentials): the page can reach 127.0.0.1 but cannot read this file.
import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { loadOrCreateKept } from './kept-file.js';

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
  const r = loadOrCreateKept(path, {
    what: 'the local password file',
    instead: 'give --local-password',
    make: newLocalPassword,
    parse: (text) => (text === '' ? undefined : text),
    invalid: 'is empty (delete it to get a new password)',
    ...(onLooseMode ? { onLooseMode } : {}),
  });
  return { password: r.value, path, created: r.created };
}
