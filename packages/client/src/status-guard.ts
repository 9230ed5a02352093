// Which status-page request gets what (pure: a request's method, path and headers in, a route
// out). Any web page the user opens can make the browser send requests to 127.0.0.1, so:
// - a Host other than the bound address is refused (421): a DNS-rebinding page's requests carry
//   its own name;
// - reading is GET (or HEAD) only, and no answer carries CORS headers, so another origin can
//   send but never read;
// - the one action (the test call, which hands out the TURN credentials) is a POST that needs the
//   token embedded in the page (a header: never in a URL) and refuses a cross-site request
//   (Sec-Fetch-Site, Origin). A preflight (OPTIONS) is refused: a cross-origin custom header
//   never gets through.
import { timingSafeEqual } from 'node:crypto';

export const TOKEN_HEADER = 'x-onionturn-token';

type Served = 'page' | 'script' | 'style' | 'status' | 'metrics' | 'test-call';

export type StatusRoute = { readonly kind: Served } | { readonly kind: 'refuse'; readonly status: number; readonly reason: string };

export interface StatusRequest {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

export interface GuardConfig {
  /** host:port as the page is reached (the bound address, IPv6 in brackets). */
  readonly authority: string;
  /** The per-start token the page carries. */
  readonly token: string;
}

const READ_PATHS: Readonly<Record<string, Served>> = {
  '/': 'page',
  '/status.js': 'script',
  '/status.css': 'style',
  '/api/status': 'status',
  '/metrics': 'metrics',
};
const TEST_CALL_PATH = '/api/test-call';

function header(req: StatusRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? (v as readonly string[])[0] : (v as string | undefined);
}

function refuse(status: number, reason: string): StatusRoute {
  return { kind: 'refuse', status, reason };
}

function sameToken(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function routeStatusRequest(req: StatusRequest, cfg: GuardConfig): StatusRoute {
  const host = header(req, 'host');
  if (host === undefined || host.toLowerCase() !== cfg.authority.toLowerCase()) {
    return refuse(421, `this page answers only at http://${cfg.authority}/`);
  }
  const url = req.url ?? '/';
  // The query is ignored (nothing is read from URLs); only the path routes.
  const path = url.split('?')[0] as string;
  const method = req.method ?? 'GET';
  const read = READ_PATHS[path];
  if (read !== undefined) {
    if (method !== 'GET' && method !== 'HEAD') return refuse(405, 'only GET');
    return { kind: read };
  }
  if (path !== TEST_CALL_PATH) return refuse(404, 'not found');
  if (method !== 'POST') return refuse(405, 'only POST');
  const site = header(req, 'sec-fetch-site');
  if (site !== undefined && site !== 'same-origin') return refuse(403, 'cross-site request refused');
  const origin = header(req, 'origin');
  if (origin !== undefined && origin.toLowerCase() !== `http://${cfg.authority}`.toLowerCase()) return refuse(403, 'cross-origin request refused');
  const token = header(req, TOKEN_HEADER);
  if (token === undefined || !sameToken(token, cfg.token)) return refuse(403, "the page's token is missing or wrong: reload the page");
  return { kind: 'test-call' };
}

/** Headers on every answer: no framing, no sniffing, no referrer, nothing cached, scripts from this origin only. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
};
