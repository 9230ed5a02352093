// Options shared by `credentials` and `credentials serve` (and by the server command, which
// verifies what these issue): where the secret comes from, lifetimes, URIs.
import type { Argv } from 'yargs';
import { UsageError } from '../exit-codes.js';
import { URI_PATTERN } from '../credential-output.js';

export interface IssueArgs {
  readonly secretFile?: string | string[] | undefined;
  readonly secret?: string | undefined;
  readonly ttl: number;
  readonly jitter?: number | undefined;
  readonly uri?: string | string[] | undefined;
}

// Options are not global: each (sub)command that takes them adds them itself, so
// `credentials new-secret` does not silently accept --ttl.
export function secretOptions(y: Argv): Argv {
  return y
    .option('secret-file', {
      type: 'string',
      requiresArg: true,
      global: false,
      describe: 'file holding the shared secret (whitespace trimmed) [env ONIONTURN_SECRET_FILE]',
    })
    .option('secret', {
      type: 'string',
      requiresArg: true,
      global: false,
      describe: 'the shared secret itself; prefer --secret-file or env ONIONTURN_SECRET: flags show in ps',
    });
}

// Typed loosely (Argv): handlers read their arguments through one interface each (IssueArgs...).
export function issueOptions(y: Argv): Argv {
  return secretOptions(y)
    .option('ttl', {
      type: 'number',
      default: 86_400,
      requiresArg: true,
      global: false,
      describe: 'nominal lifetime in seconds (the real expiry is randomly up to --jitter earlier)',
    })
    .option('jitter', {
      type: 'number',
      requiresArg: true,
      global: false,
      describe: 'seconds of random expiry jitter; default a tenth of --ttl, at most 3600',
    })
    .option('uri', {
      type: 'string',
      array: true,
      requiresArg: true,
      global: false,
      describe: 'TURN URI to hand out, e.g. turn:turn.example:3478?transport=tcp (repeatable)',
    });
}

/** The --uri values (also space- or comma-separated, as env vars carry them), validated. */
export function urisOf(value: string | readonly string[] | undefined): string[] {
  const list = value === undefined ? [] : typeof value === 'string' ? [value] : value;
  const uris = list.flatMap((v) => String(v).split(/[\s,]+/)).filter((v) => v.length > 0);
  for (const uri of uris) {
    if (!URI_PATTERN.test(uri)) throw new UsageError(`--uri '${uri}' is not a turn:, turns:, stun: or stuns: URI`);
  }
  return uris;
}

/** --secret-file may appear once here (issuing uses one secret). */
export function singleSecretFile(value: string | readonly string[] | undefined): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  if (value.length > 1) throw new UsageError('give --secret-file once: credentials are issued with one (the newest) secret');
  return value[0];
}
