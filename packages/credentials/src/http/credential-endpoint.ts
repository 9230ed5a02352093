// node:http adapter for the credential API: a `(req, res) => void` that the `onionturn credentials
// serve` command listens with and the TURN server mounts next to its other HTTP routes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { handleCredentialRequest, type EndpointConfig } from '../credential-request.js';
import { generate } from '../generate.js';
import type { RandomSource } from '../randomness.js';
import { SourceBuckets, TokenBucket } from '@onionturn/io';

export interface RateLimit {
  /** Sustained requests per minute. */
  readonly perMinute: number;
  /** Requests allowed at once (default perMinute). */
  readonly burst?: number;
}

export interface CredentialHandlerOptions extends Omit<EndpointConfig, 'secret'> {
  /** The newest secret, or a function returning it (read per request, so rotation needs no restart). */
  readonly secret: string | (() => string);
  /** Per source (client address); default 60 per minute; `false` turns it off (e.g. a proxy in front limits). */
  readonly rateLimit?: RateLimit | false;
  /** Over all sources together; default 10 times the per-source limit; `false` turns it off. */
  readonly totalRateLimit?: RateLimit | false;
  /**
   * Who a request is from, for the per-source limit. Default: the socket's remote address. Behind
   * an onion service every client is 127.0.0.1: a circuit id is the better key there.
   */
  readonly sourceOf?: (req: IncomingMessage) => string;
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
  const clock = options.now ?? Date.now;
  const perSource = limit === false ? undefined : new SourceBuckets(limit.perMinute / 60, limit.burst ?? limit.perMinute);
  const total =
    options.totalRateLimit === undefined
      ? limit === false
        ? false
        : { perMinute: limit.perMinute * 10, burst: (limit.burst ?? limit.perMinute) * 10 }
      : options.totalRateLimit;
  const bucket = total === false ? undefined : new TokenBucket(total.perMinute / 60, total.burst ?? total.perMinute, clock());
  const sourceOf = options.sourceOf ?? ((req: IncomingMessage): string => req.socket.remoteAddress ?? '');
  return (req, res) => {
    // The API takes no body; drain whatever was sent so the connection can be reused.
    req.resume();
    const now = clock();
    const sourceBucket = perSource?.get(sourceOf(req), now);
    const response = handleCredentialRequest(
      { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers },
      { ...options, secret: secretOf() },
      { now, ...(bucket ? { bucket } : {}), ...(sourceBucket ? { sourceBucket } : {}), ...(options.random ? { random: options.random } : {}) },
    );
    res.writeHead(response.status, response.headers);
    res.end(response.body);
  };
}
