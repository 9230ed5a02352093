// The credential HTTP API (draft-uberti-behave-turn-rest-00 §2) as a pure function from a
// request description to a response description; '@onionturn/credentials/http' adapts it to
// node:http. Every answer is JSON and `Cache-Control: no-store`: a cached password is a leaked one.
import { createHash, timingSafeEqual } from 'node:crypto';
import { generate } from './generate.js';
import type { RandomSource } from './randomness.js';
import type { TokenBucket } from '@onionturn/io';

export interface EndpointConfig {
  /** The secret credentials are issued with (the newest one). */
  readonly secret: string;
  /** Nominal ttl of issued credentials, seconds. */
  readonly ttl: number;
  /** Jitter window in seconds (default: see generate()). */
  readonly jitter?: number;
  /** TURN URIs returned with each credential (`turn:host:port?transport=tcp`, ...). */
  readonly uris: readonly string[];
  /** When non-empty, a request must carry one of these (`key=`, `X-API-Key` or `Authorization: Bearer`). */
  readonly apiKeys?: readonly string[];
  /** Path prefix when mounted inside another server, e.g. '/turn-credentials'. Default ''. */
  readonly basePath?: string;
  /** Honour the draft's `username` parameter as a (linkable) label. Default true. */
  readonly allowLabels?: boolean;
  /** Value of Access-Control-Allow-Origin, for browser apps on another origin. Default none. */
  readonly corsOrigin?: string;
}

export interface CredentialRequest {
  readonly method: string;
  /** Path and query, as in IncomingMessage.url. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

export interface CredentialResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface RequestContext {
  /** Milliseconds since the epoch. */
  readonly now: number;
  /** Shared by all sources; absent means no total limit. */
  readonly bucket?: TokenBucket;
  /** This request's source's own; absent means no per-source limit. */
  readonly sourceBucket?: TokenBucket;
  readonly random?: RandomSource;
}

function baseHeaders(config: EndpointConfig): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  };
  if (config.corsOrigin !== undefined) {
    headers['access-control-allow-origin'] = config.corsOrigin;
    headers['vary'] = 'Origin';
  }
  return headers;
}

function json(config: EndpointConfig, status: number, body: unknown, extra: Record<string, string> = {}): CredentialResponse {
  return { status, headers: { ...baseHeaders(config), ...extra }, body: JSON.stringify(body) + '\n' };
}

function failure(config: EndpointConfig, status: number, code: string, reason: string, extra: Record<string, string> = {}): CredentialResponse {
  return json(config, status, { error: code, reason }, extra);
}

function header(request: CredentialRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : value?.[0];
}

function presentedKey(request: CredentialRequest, query: URLSearchParams): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(header(request, 'authorization') ?? '')?.[1];
  return query.get('key') ?? header(request, 'x-api-key') ?? bearer;
}

// Hashing first gives equal lengths, so the comparison leaks neither content nor length.
function sameKey(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

function routes(basePath: string): Set<string> {
  const base = basePath.replace(/\/+$/, '');
  return new Set([base === '' ? '/' : base, `${base}/`, `${base}/credentials`]);
}

export function handleCredentialRequest(request: CredentialRequest, config: EndpointConfig, context: RequestContext): CredentialResponse {
  // The source's own limit first: a source over it spends nothing of the total others share.
  for (const bucket of [context.sourceBucket, context.bucket]) {
    if (bucket && !bucket.take(1, context.now))
      return failure(config, 429, 'rate-limited', 'too many requests', { 'retry-after': String(bucket.secondsUntil(1)) });
  }
  if (request.method === 'OPTIONS' && config.corsOrigin !== undefined) {
    return {
      status: 204,
      headers: {
        ...baseHeaders(config),
        'access-control-allow-methods': 'GET',
        'access-control-allow-headers': 'authorization, x-api-key',
        'access-control-max-age': '600',
      },
      body: '',
    };
  }
  if (request.method !== 'GET') return failure(config, 405, 'method-not-allowed', 'only GET is supported', { allow: 'GET' });
  let url: URL;
  try {
    url = new URL(request.url, 'http://endpoint.invalid');
  } catch {
    return failure(config, 400, 'bad-request', 'the request target is not a valid URL');
  }
  const credentialsPath = `${(config.basePath ?? '').replace(/\/+$/, '')}/credentials`;
  if (!routes(config.basePath ?? '').has(url.pathname)) return failure(config, 404, 'not-found', 'use GET /?service=turn or GET /credentials');
  const query = url.searchParams;
  const keys = config.apiKeys ?? [];
  if (keys.length > 0) {
    const given = presentedKey(request, query);
    // Compare against every key so the time taken does not depend on which one matched.
    const matched = given !== undefined && keys.map((k) => sameKey(k, given)).includes(true);
    if (!matched) return failure(config, 401, 'unauthorized', 'a valid API key is required', { 'www-authenticate': 'Bearer' });
  }
  const service = query.get('service');
  // The draft's root form requires service=turn; /credentials implies it.
  if (service !== 'turn' && !(service === null && url.pathname === credentialsPath)) {
    return failure(config, 400, 'bad-service', "the only supported service is 'turn'");
  }
  const label = query.get('username') ?? undefined;
  if (label !== undefined && config.allowLabels === false) return failure(config, 400, 'labels-disabled', 'this endpoint issues random usernames only');
  const made = generate({
    secret: config.secret,
    ttl: config.ttl,
    now: context.now,
    ...(config.jitter !== undefined ? { jitter: config.jitter } : {}),
    ...(label !== undefined && label !== '' ? { label } : {}),
    ...(context.random ? { random: context.random } : {}),
  });
  if (!made.ok) {
    if (made.error.code === 'invalid-label') return failure(config, 400, 'invalid-label', made.error.reason);
    // Configuration errors are caught when the handler is created; this is a last resort.
    return failure(config, 500, 'internal', 'the endpoint is misconfigured');
  }
  const { username, password, ttl } = made.value;
  return json(config, 200, { username, password, ttl, uris: config.uris });
}
