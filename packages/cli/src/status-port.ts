// The status page's port when --status is not given: chosen at random on first start and kept
// next to the local password, so an app or bookmark keeps working and web pages cannot find every
// user's shim at one well-known port.
import { randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { errorText } from '@onionturn/io';
import { UsageError } from './exit-codes.js';
import { localPasswordPath } from './local-password.js';

/** Below Linux's ephemeral range (32768-60999), so an outgoing connection rarely holds it. */
const PORT_MIN = 10_000;
const PORT_MAX = 32_767;

export function statusPortPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(dirname(localPasswordPath(env)), 'status-port');
}

function parsePort(text: string): number | undefined {
  const n = Number(text.trim());
  return Number.isInteger(n) && n >= 1 && n <= 65_535 ? n : undefined;
}

/** The kept port, or a new random one saved at `path` (0600). */
export function loadOrCreateStatusPort(path: string): { port: number; created: boolean } {
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new UsageError(`cannot read ${path}: ${errorText(error)}; give --status 127.0.0.1:PORT or --no-status`);
  }
  if (text !== undefined) {
    const port = parsePort(text);
    if (port === undefined) throw new UsageError(`${path} holds no port number; delete it for a new one, or give --status 127.0.0.1:PORT`);
    return { port, created: false };
  }
  const port = randomInt(PORT_MIN, PORT_MAX + 1);
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, `${port}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Another client started at the same moment and wrote first: use its port.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateStatusPort(path);
    throw new UsageError(`cannot save the status page's port in ${path}: ${errorText(error)}; give --status 127.0.0.1:PORT or --no-status`);
  }
  return { port, created: true };
}
