// Where the upstream credential of a flow comes from in local-credential mode: generated from the
// REST secret (the user runs the server too), or fetched from a draft-uberti credential URL
// THROUGH Tor with the flow's own SOCKS isolation, so the fetch rides the flow's circuit and the
// endpoint never sees the user's address. One fresh credential per flow: nothing links flows.
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { SocksProxyAgent } from 'socks-proxy-agent';
import { generate, parseRestUsername } from '@onionturn/credentials';
import { systemClock, type Clock } from './clock.js';
import type { UpstreamCredential } from './credential-resigner.js';
import { formatHostPort, type HostPort } from './endpoints.js';
import { upstreamError, type UpstreamError } from './errors.js';
import type { SocksAuth } from './socks5-codec.js';

export type CredentialResult = { readonly ok: true; readonly value: UpstreamCredential } | { readonly ok: false; readonly error: UpstreamError };

export interface CredentialSource {
  /** For the start log line: what kind of source, never a secret. */
  readonly description: string;
  obtain(auth: SocksAuth | undefined, now: number): Promise<CredentialResult>;
}

/** Credentials minted locally from the shared secret (coturn `use-auth-secret` compatible). */
export class SecretCredentialSource implements CredentialSource {
  readonly description = 'upstream secret file';
  readonly #secret: string;
  readonly #ttl: number;

  constructor(secret: string, ttlSeconds: number) {
    this.#secret = secret;
    this.#ttl = ttlSeconds;
  }

  obtain(_auth: SocksAuth | undefined, now: number): Promise<CredentialResult> {
    const r = generate({ secret: this.#secret, ttl: this.#ttl, now });
    if (!r.ok) return Promise.resolve({ ok: false, error: upstreamError('credentials', `cannot make an upstream credential: ${r.error.reason}`) });
    return Promise.resolve({ ok: true, value: { username: r.value.username, password: r.value.password, expiresAt: r.value.expiry * 1000 } });
  }
}

/** The draft's answer: {username, password, ttl, uris}. */
interface CredentialJson {
  readonly username: string;
  readonly password: string;
  readonly ttl: number;
}

const MAX_BODY = 64 * 1024;

function isCredentialJson(v: unknown): v is CredentialJson {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o['username'] === 'string' && o['username'] !== '' && typeof o['password'] === 'string' && typeof o['ttl'] === 'number' && o['ttl'] > 0;
}

/** Parses the endpoint's JSON; expiry from a REST username when it has one, else from ttl. */
export function parseCredentialResponse(body: string, now: number): CredentialResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { ok: false, error: upstreamError('credentials', 'the credential URL did not answer JSON') };
  }
  if (!isCredentialJson(parsed))
    return { ok: false, error: upstreamError('credentials', 'the credential URL answered JSON without username, password and ttl') };
  const rest = parseRestUsername(parsed.username);
  const expiresAt = rest ? Math.min(rest.expiry * 1000, now + parsed.ttl * 1000) : now + parsed.ttl * 1000;
  return { ok: true, value: { username: parsed.username, password: parsed.password, expiresAt } };
}

export interface UrlCredentialOptions {
  readonly timeoutMs: number;
  /**
   * Name the URL's scheme and host in failure reasons (--log-sensitive). Off by default: the host
   * says which service the user fetches from. The path and query are never named, since the
   * query often carries an API key.
   */
  readonly detail?: boolean;
  /** Times the answer (default the system clock; the shim's clock, a ManualClock in tests). */
  readonly clock?: Clock;
}

/** GET the credential URL through the SOCKS port (socks5h: the name goes to Tor unresolved). */
export class UrlCredentialSource implements CredentialSource {
  readonly description = 'credential URL (fetched through Tor)';
  readonly #url: URL;
  readonly #socks: HostPort;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  /** How failure reasons name the URL: "the credential URL", plus scheme://host in detail mode. */
  readonly #name: string;

  constructor(url: URL, socks: HostPort, opts: UrlCredentialOptions) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`credential URL must be http:// or https://, not ${url.protocol}`);
    this.#url = url;
    this.#socks = socks;
    this.#timeoutMs = opts.timeoutMs;
    this.#clock = opts.clock ?? systemClock;
    this.#name = opts.detail === true ? `the credential URL ${url.protocol}//${url.host}` : 'the credential URL';
  }

  obtain(auth: SocksAuth | undefined, now: number): Promise<CredentialResult> {
    const userinfo = auth ? `${encodeURIComponent(auth.username)}:${encodeURIComponent(auth.password)}@` : '';
    const agent = new SocksProxyAgent(`socks5h://${userinfo}${formatHostPort(this.#socks.host, this.#socks.port)}`, { timeout: this.#timeoutMs });
    const get = this.#url.protocol === 'https:' ? httpsGet : httpGet;
    const name = this.#name;
    return new Promise((resolve) => {
      let done = false;
      const finish = (r: CredentialResult): void => {
        if (done) return;
        done = true;
        timer.cancel();
        req.destroy();
        agent.destroy();
        resolve(r);
      };
      const fail = (reason: string): void => finish({ ok: false, error: upstreamError('credentials', reason) });
      const req = get(this.#url, { agent, headers: { accept: 'application/json' } }, (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          res.resume();
          fail(`${name} answered HTTP ${res.statusCode ?? '?'}`);
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) fail(`${name} answered more than ${MAX_BODY} bytes`);
          else chunks.push(c);
        });
        res.on('end', () => finish(parseCredentialResponse(Buffer.concat(chunks).toString('utf8'), now)));
        res.on('error', (e) => fail(`${name}: ${this.#scrub(e.message)}`));
      });
      req.on('error', (e: NodeJS.ErrnoException) =>
        fail(`cannot fetch ${name} through SOCKS ${formatHostPort(this.#socks.host, this.#socks.port)}: ${e.code ?? this.#scrub(e.message)}`),
      );
      const timer = this.#clock.after(this.#timeoutMs, () => fail(`${name} did not answer within ${this.#timeoutMs} ms`));
    });
  }

  /** An error text from Node or the SOCKS agent with the URL (or its host) taken out, whatever the mode. */
  #scrub(text: string): string {
    const u = this.#url;
    let out = text;
    for (const part of [u.href, u.origin, u.host, u.hostname]) if (part !== '') out = out.split(part).join('<credential URL>');
    return out;
  }
}
