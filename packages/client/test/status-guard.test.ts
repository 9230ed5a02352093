// The status page's request guard without sockets: what a page on another origin, a DNS-rebinding
// page and the status page itself each get.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TOKEN_HEADER, SECURITY_HEADERS, routeStatusRequest, type StatusRequest } from '../src/status-guard.js';

const cfg = { authority: '127.0.0.1:17454', token: 'the-pages-token' };
const get = (url: string, headers: StatusRequest['headers'] = {}): StatusRequest => ({ method: 'GET', url, headers: { host: cfg.authority, ...headers } });
const post = (headers: StatusRequest['headers']): StatusRequest => ({ method: 'POST', url: '/api/test-call', headers: { host: cfg.authority, ...headers } });
const sameOrigin = { origin: 'http://127.0.0.1:17454', 'sec-fetch-site': 'same-origin' };

test('the page, its script and style, /api/status and /metrics are served to GET at the bound address', () => {
  assert.deepEqual(routeStatusRequest(get('/'), cfg), { kind: 'page' });
  assert.deepEqual(routeStatusRequest(get('/status.js'), cfg), { kind: 'script' });
  assert.deepEqual(routeStatusRequest(get('/status.css'), cfg), { kind: 'style' });
  assert.deepEqual(routeStatusRequest(get('/api/status?x=1'), cfg), { kind: 'status' });
  assert.deepEqual(routeStatusRequest(get('/metrics'), cfg), { kind: 'metrics' });
  assert.equal(routeStatusRequest(get('/nope'), cfg).kind, 'refuse');
});

test('a foreign Host header (DNS rebinding) gets 421, whatever the path', () => {
  for (const host of ['evil.example:17454', 'localhost:17454', '127.0.0.1:1', '127.0.0.1', undefined]) {
    for (const path of ['/', '/api/status', '/metrics']) {
      const r = routeStatusRequest({ method: 'GET', url: path, headers: { host } }, cfg);
      assert.equal(r.kind === 'refuse' && r.status, 421, `${String(host)} ${path}`);
    }
  }
  const r = routeStatusRequest({ method: 'POST', url: '/api/test-call', headers: { host: 'evil.example:17454', [TOKEN_HEADER]: cfg.token } }, cfg);
  assert.equal(r.kind === 'refuse' && r.status, 421);
});

test('reading is GET or HEAD only; a preflight (OPTIONS) is refused, so no cross-origin custom header gets through', () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const r = routeStatusRequest({ method, url: '/api/status', headers: { host: cfg.authority } }, cfg);
    assert.equal(r.kind === 'refuse' && r.status, 405, method);
  }
  const pre = routeStatusRequest({ method: 'OPTIONS', url: '/api/test-call', headers: { host: cfg.authority, origin: 'https://evil.example' } }, cfg);
  assert.equal(pre.kind, 'refuse');
  assert.equal(routeStatusRequest({ method: 'HEAD', url: '/', headers: { host: cfg.authority } }, cfg).kind, 'page');
});

test('the test call needs the page token in its header', () => {
  assert.deepEqual(routeStatusRequest(post({ ...sameOrigin, [TOKEN_HEADER]: cfg.token }), cfg), { kind: 'test-call' });
  for (const token of [undefined, '', 'wrong', `${cfg.token}x`]) {
    const r = routeStatusRequest(post({ ...sameOrigin, ...(token === undefined ? {} : { [TOKEN_HEADER]: token }) }), cfg);
    assert.equal(r.kind === 'refuse' && r.status, 403, String(token));
  }
  assert.equal(routeStatusRequest({ ...get('/api/test-call', { [TOKEN_HEADER]: cfg.token }) }, cfg).kind, 'refuse', 'GET never starts it');
});

test('a cross-origin or cross-site POST is refused even with the token', () => {
  const cases: StatusRequest['headers'][] = [
    { origin: 'https://evil.example', [TOKEN_HEADER]: cfg.token },
    { origin: 'null', [TOKEN_HEADER]: cfg.token },
    { 'sec-fetch-site': 'cross-site', [TOKEN_HEADER]: cfg.token },
    { 'sec-fetch-site': 'same-site', origin: 'http://127.0.0.1:17454', [TOKEN_HEADER]: cfg.token },
  ];
  for (const h of cases) {
    const r = routeStatusRequest(post(h), cfg);
    assert.equal(r.kind === 'refuse' && r.status, 403, JSON.stringify(h));
  }
});

test('answers carry a CSP without inline script and no CORS header', () => {
  const csp = SECURITY_HEADERS['content-security-policy'] ?? '';
  assert.match(csp, /default-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.ok(!Object.keys(SECURITY_HEADERS).some((h) => h.startsWith('access-control-')));
});
