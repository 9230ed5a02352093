// Stream isolation through SOCKS credentials: Tor's IsolateSOCKSAuth (on by default) puts
// streams with different username/password pairs on different circuits.
import { randomBytes } from 'node:crypto';
import type { SocksAuth } from './socks5-codec.js';

export type IsolationMode = 'per-flow' | 'shared';

export const ISOLATION_MODES: readonly IsolationMode[] = ['per-flow', 'shared'];

function randomAuth(): SocksAuth {
  // Random, so nothing in the credential links flows or runs (Tor sees it, the exit does not).
  return { username: `onionturn-${randomBytes(8).toString('hex')}`, password: randomBytes(12).toString('hex') };
}

/** Hands out SOCKS credentials per flow: fresh ones (per-flow) or one pair for this run (shared). */
export class IsolationPolicy {
  readonly mode: IsolationMode;
  readonly #shared: SocksAuth;

  constructor(mode: IsolationMode) {
    this.mode = mode;
    this.#shared = randomAuth();
  }

  next(): SocksAuth {
    return this.mode === 'per-flow' ? randomAuth() : this.#shared;
  }
}
