import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SourceBuckets, TokenBucket } from '@onionturn/io';
import { handleCredentialRequest, verify, type CredentialRequest, type EndpointConfig } from '../src/index.js';

const NOW = 1_700_000_000_000;
const config: EndpointConfig = { secret: 'endpoint-secret', ttl: 3600, uris: ['turn:127.0.0.1:3478?transport=tcp'] };

function get(url: string, headers: CredentialRequest['headers'] = {}): CredentialRequest {
  return { method: 'GET', url, headers };
}

function body(r: { body: string }): Record<string, unknown> {
  return JSON.parse(r.body) as Record<string, unknown>;
}

test('GET /?service=turn returns the draft JSON with a verifiable credential, no-store', () => {
  const r = handleCredentialRequest(get('/?service=turn'), config, { now: NOW });
  assert.equal(r.status, 200);
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.match(r.headers['content-type'] ?? '', /^application\/json/);
  const b = body(r);
  assert.deepEqual(Object.keys(b).sort(), ['password', 'ttl', 'uris', 'username']);
  assert.equal(b['ttl'], 3600);
  assert.deepEqual(b['uris'], config.uris);
  assert.ok(verify(String(b['username']), String(b['password']), { secrets: ['endpoint-secret'], now: NOW }).ok);
});

test('username parameter becomes the label; labels can be disabled; bad labels are 400', () => {
  const r = handleCredentialRequest(get('/?service=turn&username=alice'), config, { now: NOW });
  assert.match(String(body(r)['username']), /^\d+:alice$/);
  const off = handleCredentialRequest(get('/?service=turn&username=alice'), { ...config, allowLabels: false }, { now: NOW });
  assert.equal(off.status, 400);
  const bad = handleCredentialRequest(get('/?service=turn&username=a%3Ab'), config, { now: NOW });
  assert.equal(bad.status, 400);
  assert.equal(body(bad)['error'], 'invalid-label');
});

test('GET /credentials needs no service parameter; wrong service is 400, unknown path 404', () => {
  assert.equal(handleCredentialRequest(get('/credentials'), config, { now: NOW }).status, 200);
  assert.equal(handleCredentialRequest(get('/credentials?service=turn'), config, { now: NOW }).status, 200);
  const wrong = handleCredentialRequest(get('/?service=stun'), config, { now: NOW });
  assert.equal(wrong.status, 400);
  assert.deepEqual(body(wrong), { error: 'bad-service', reason: "the only supported service is 'turn'" });
  assert.equal(handleCredentialRequest(get('/'), config, { now: NOW }).status, 400);
  const missing = handleCredentialRequest(get('/admin'), config, { now: NOW });
  assert.equal(missing.status, 404);
  assert.equal(missing.headers['cache-control'], 'no-store');
});

test('methods other than GET are 405 with Allow and a JSON error', () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']) {
    const r = handleCredentialRequest({ method, url: '/?service=turn', headers: {} }, config, { now: NOW });
    assert.equal(r.status, 405, method);
    assert.equal(r.headers['allow'], 'GET');
    assert.equal(body(r)['error'], 'method-not-allowed');
  }
});

test('API keys: query key, X-API-Key and Bearer are accepted; missing or wrong is 401', () => {
  const keyed = { ...config, apiKeys: ['k1', 'k2'] };
  assert.equal(handleCredentialRequest(get('/?service=turn'), keyed, { now: NOW }).status, 401);
  assert.equal(handleCredentialRequest(get('/?service=turn&key=nope'), keyed, { now: NOW }).status, 401);
  assert.equal(handleCredentialRequest(get('/?service=turn&key=k2'), keyed, { now: NOW }).status, 200);
  assert.equal(handleCredentialRequest(get('/credentials', { 'x-api-key': 'k1' }), keyed, { now: NOW }).status, 200);
  assert.equal(handleCredentialRequest(get('/credentials', { authorization: 'Bearer k1' }), keyed, { now: NOW }).status, 200);
  assert.equal(handleCredentialRequest(get('/credentials', { authorization: 'Bearer k3' }), keyed, { now: NOW }).status, 401);
});

test('rate limit: a burst passes, the next request is 429 with Retry-After, tokens come back', () => {
  const bucket = new TokenBucket(1, 3, NOW); // one per second, three at once
  for (let i = 0; i < 3; i++) assert.equal(handleCredentialRequest(get('/credentials'), config, { now: NOW, bucket }).status, 200);
  const limited = handleCredentialRequest(get('/credentials'), config, { now: NOW, bucket });
  assert.equal(limited.status, 429);
  assert.equal(limited.headers['retry-after'], '1');
  assert.equal(body(limited)['error'], 'rate-limited');
  assert.equal(handleCredentialRequest(get('/credentials'), config, { now: NOW + 1000, bucket }).status, 200);
});

test('rate limit per source: one client over its limit does not lock out the others; a total still holds', () => {
  const sources = new SourceBuckets(1, 2, 3);
  const bucket = new TokenBucket(10, 5, NOW);
  const ask = (source: string): number =>
    handleCredentialRequest(get('/credentials'), config, { now: NOW, bucket, sourceBucket: sources.get(source, NOW) }).status;
  assert.deepEqual([ask('a'), ask('a'), ask('a'), ask('a')], [200, 200, 429, 429]);
  assert.deepEqual([ask('b'), ask('b')], [200, 200], 'another source is served');
  assert.equal(ask('c'), 200);
  assert.equal(ask('d'), 429, 'the total (5 at once) is spent');
  assert.ok(sources.size <= 3, 'at most maxSources buckets are kept');
});

test('basePath mounts the routes under a prefix; CORS is opt-in', () => {
  const mounted = { ...config, basePath: '/turn/', corsOrigin: 'https://app.example' };
  assert.equal(handleCredentialRequest(get('/turn/credentials'), mounted, { now: NOW }).status, 200);
  assert.equal(handleCredentialRequest(get('/turn?service=turn'), mounted, { now: NOW }).status, 200);
  assert.equal(handleCredentialRequest(get('/credentials'), mounted, { now: NOW }).status, 404);
  const r = handleCredentialRequest(get('/turn/credentials'), mounted, { now: NOW });
  assert.equal(r.headers['access-control-allow-origin'], 'https://app.example');
  const preflight = handleCredentialRequest({ method: 'OPTIONS', url: '/turn/credentials', headers: {} }, mounted, { now: NOW });
  assert.equal(preflight.status, 204);
  assert.equal(handleCredentialRequest(get('/credentials'), config, { now: NOW }).headers['access-control-allow-origin'], undefined);
});
