// Local-credential mode with a stream held ready (issue 14, setup): the upstream credential of the
// flow that will take the held stream is fetched as soon as that stream is ready, through the same
// isolation (so on the same circuit, as the flow's own fetch would be). A flow that takes the held
// stream then has the server's 401 and its credential at once, and its first Allocate goes out
// signed: one circuit round trip instead of three (fetch over Tor, then the Allocate). A held
// stream no flow took takes its credential with it: one credential per flow, nothing links flows.
import { upstreamError } from './errors.js';
import type { SocksAuth } from './socks5-codec.js';
import type { CredentialResult, CredentialSource } from './upstream-credentials.js';

/** A credential fetched ahead is given out no later than this after its fetch began. */
export const AHEAD_MAX_AGE_MS = 60_000;

const keyOf = (auth: SocksAuth): string => `${auth.username}\u0000${auth.password}`;

export class CredentialsAhead implements CredentialSource {
  readonly description: string;
  readonly #source: CredentialSource;
  readonly #ahead = new Map<string, { readonly at: number; readonly result: Promise<CredentialResult> }>();

  constructor(source: CredentialSource) {
    this.#source = source;
    this.description = source.description;
  }

  /** Credentials fetched ahead and not yet taken (tests, leak checks). */
  get aheadCount(): number {
    return this.#ahead.size;
  }

  /** A stream with isolation `auth` is held ready: the credential its flow will need, fetched now. */
  fetchAhead(auth: SocksAuth, now: number): void {
    for (const [key, e] of this.#ahead) if (now - e.at >= AHEAD_MAX_AGE_MS) this.#ahead.delete(key);
    const key = keyOf(auth);
    if (this.#ahead.has(key)) return;
    const result = this.#source
      .obtain(auth, now)
      .catch((e: unknown): CredentialResult => ({ ok: false, error: upstreamError('credentials', `credential fetch failed: ${String(e)}`) }));
    this.#ahead.set(key, { at: now, result });
  }

  /** The held stream with isolation `auth` went without a flow: its credential is not given out. */
  forget(auth: SocksAuth): void {
    this.#ahead.delete(keyOf(auth));
  }

  /** The credential fetched ahead for `auth` if there is a fresh one (again, fresh, if that fetch failed); else a fetch now. */
  obtain(auth: SocksAuth | undefined, now: number): Promise<CredentialResult> {
    if (auth !== undefined) {
      const key = keyOf(auth);
      const e = this.#ahead.get(key);
      if (e !== undefined) {
        this.#ahead.delete(key);
        if (now - e.at < AHEAD_MAX_AGE_MS) return e.result.then((r) => (r.ok ? r : this.#source.obtain(auth, now)));
      }
    }
    return this.#source.obtain(auth, now);
  }
}
