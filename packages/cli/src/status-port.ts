// The status page's port when --status is not given: chosen at random on first start and kept
// next to the local password, so an app or bookmark keeps working and web pages cannot find every
// user's shim at one well-known port.
import { randomInt } from 'node:crypto';
import { dirname, join } from 'node:path';
import { loadOrCreateKept } from './kept-file.js';
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
  const r = loadOrCreateKept(path, {
    what: "the status page's port file",
    instead: 'give --status 127.0.0.1:PORT or --no-status',
    make: () => String(randomInt(PORT_MIN, PORT_MAX + 1)),
    parse: parsePort,
    invalid: 'holds no port number (delete it for a new one)',
  });
  return { port: r.value, created: r.created };
}
