// node:http adapter for the credential API: a `(req, res) => void` that the `onionturn credentials
// serve` command listens with and the TURN server mounts next to its other HTTP routes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { handleCredentialRequest, type EndpointConfig } from '../credential-request.js';
import { generate } from '../generate.js';
import type { RandomSource } from '../randomness.js';
import { TokenBucket } from '../token-bucket.js';

export interface RateLimit {
  /** Sustained requests per minute. */
  readonly perMinute: number;
  /** Requests allowed at once (default perMinute). */
  readonly burst?: number;
}

export interface CredentialHandlerOptions extends Omit<EndpointConfig, 'secret'> {
  /** The newest secret, or a function returning it (read per request, so rotation needs no restart). */
  readonly secret: string | (() => string);
  /** Default 60 per minute; `false` turns the limit off (e.g. when a proxy in front limits). */
  readonly rateLimit?: RateLimit | false;
  /** Clock in milliseconds (default Date.now); for tests. */
  readonly now?: () => number;
  readonly random?: RandomSource;
}

export type CredentialHandler = (req: IncomingMessage, res: ServerResponse) => void;

export const DEFAULT_RATE_LIMIT: RateLimit = { perMinute: 60 };

/**
 * Creates the handler. Throws a RangeError for a configuration that could never issue a
 * credential (empty secret, bad ttl or jitter), so mistakes surface at startup, not per request.
 */
export function createCredentialHandler(options: CredentialHandlerOptions): CredentialHandler {
  const configured = options.secret;
  const secretOf = typeof configured === 'function' ? configured : (): string => configured;
  const trial = generate({ secret: secretOf(), ttl: options.ttl, ...(options.jitter !== undefined ? { jitter: options.jitter } : {}) });
  if (!trial.ok) throw new RangeError(`credential endpoint: ${trial.error.reason}`);
  const limit = options.rateLimit === undefined ? DEFAULT_RATE_LIMIT : options.rateLimit;
  const bucket = limit === false ? undefined : new TokenBucket(limit.perMinute / 60, limit.burst ?? limit.perMinute, Date.now());
  const clock = options.now ?? Date.now;
  return (req, res) => {
    // The API takes no body; drain whatever was sent so the connection can be reused.
    req.resume();
    const response = handleCredentialRequest(
      { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers },
      { ...options, secret: secretOf() },
      { now: clock(), ...(bucket ? { bucket } : {}), ...(options.random ? { random: options.random } : {}) },
    );
    res.writeHead(response.status, response.headers);
    res.end(response.body);
  };
}
