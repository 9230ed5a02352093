// Writing a fresh shared secret to a file only its owner can read.
import { open } from 'node:fs/promises';
import { generateSecret } from '@onionturn/credentials';
import { UsageError } from './exit-codes.js';

export interface WriteSecretOptions {
  /** Replace an existing file. */
  readonly force?: boolean;
  /** Random bytes in the secret (hex-encoded, so the file holds twice as many characters). */
  readonly bytes?: number;
}

/** Creates `path` with mode 0600 holding a new random secret; never prints or returns the secret. */
export async function writeSecretFile(path: string, options: WriteSecretOptions = {}): Promise<void> {
  const secret = generateSecret(options.bytes ?? 32);
  if (!secret.ok) throw new UsageError(secret.error.reason);
  let handle;
  try {
    // 'wx' refuses to follow or replace an existing file; the mode applies only on creation...
    handle = await open(path, options.force ? 'w' : 'wx', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new UsageError(`${path} already exists; pass --force to replace it`);
    throw new UsageError(`cannot create secret file ${path}: ${code ?? String(error)}`);
  }
  try {
    // ...so an existing file replaced with --force is narrowed to 0600 before the secret goes in.
    await handle.chmod(0o600);
    await handle.writeFile(`${secret.value}\n`, 'utf8');
  } finally {
    await handle.close();
  }
}
