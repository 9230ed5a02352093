import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { DEFAULT_TTL, defaultJitter, generate, generateSecret, parseRestUsername, restPassword, type RandomSource } from '../src/index.js';

const NOW = 1_700_000_000_000; // fixed clock, ms

function must<T>(r: { ok: true; value: T } | { ok: false; error: { code: string; reason: string } }): T {
  if (!r.ok) assert.fail(`unexpected error ${r.error.code}: ${r.error.reason}`);
  return r.value;
}

test('password is base64(HMAC-SHA1(secret, username)), byte-for-byte as coturn computes it', () => {
  // Values computed with `printf %s USER | openssl dgst -sha1 -hmac SECRET -binary | base64`;
  // the first pair was also accepted by a real coturn 4.6.1 (--static-auth-secret=S2).
  assert.equal(restPassword('S2', '1795312800:abc'), 'WRcHI2O9/j/uXS6dleKcQoCk5Co=');
  assert.equal(restPassword('north-secret', '1700000000:onionturn'), '2j5WtyJzrZeUwww1l2cLGOq+WmI=');
});

test('generate: username is <expiry>:<128-bit id>, password matches, ttl is the nominal one', () => {
  const c = must(generate({ secret: 'shh', ttl: 3600, now: NOW }));
  const parsed = parseRestUsername(c.username);
  assert.ok(parsed);
  assert.equal(parsed.expiry, c.expiry);
  assert.match(parsed.id, /^[A-Za-z0-9_-]{22}$/); // 16 bytes, base64url
  assert.equal(Buffer.from(parsed.id, 'base64url').length, 16);
  assert.equal(c.password, createHmac('sha1', 'shh').update(c.username).digest('base64'));
  assert.equal(c.ttl, 3600);
});

test('generate: expiry lies in [now + ttl - jitter, now + ttl - 1]', () => {
  const nowS = NOW / 1000;
  for (let i = 0; i < 500; i++) {
    const c = must(generate({ secret: 's', ttl: 600, now: NOW }));
    assert.ok(c.expiry >= nowS + 600 - 60 && c.expiry <= nowS + 599, `expiry ${c.expiry}`);
  }
  assert.equal(defaultJitter(600), 60);
  assert.equal(defaultJitter(DEFAULT_TTL), 3600); // a tenth would be 8640: capped at one hour
  assert.equal(defaultJitter(5), 0);
});

test('randomization over 10,000 credentials: uniform over the whole window, no repeats, never now + ttl', () => {
  const ttl = DEFAULT_TTL;
  const window = defaultJitter(ttl); // 3600 s
  const nowS = NOW / 1000;
  const buckets = new Array<number>(20).fill(0);
  const usernames = new Set<string>();
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < 10_000; i++) {
    const c = must(generate({ secret: 'secret', ttl, now: NOW }));
    assert.ok(!c.username.includes(String(nowS + ttl)), `username ${c.username} reveals now + ttl`);
    usernames.add(c.username);
    const offset = nowS + ttl - c.expiry; // 1..window
    min = Math.min(min, offset);
    max = Math.max(max, offset);
    const bucket = Math.floor(((offset - 1) * buckets.length) / window);
    buckets[bucket] = (buckets[bucket] ?? 0) + 1;
  }
  assert.equal(usernames.size, 10_000, 'a username repeated');
  assert.ok(min >= 1 && max <= window, `offsets out of window: ${min}..${max}`);
  // Both ends of the window are reached (each end's 1% misses all 10,000 draws with p ~ e^-100).
  assert.ok(min <= window * 0.01 && max >= window * 0.99, `offsets do not span the window: ${min}..${max}`);
  const expected = 10_000 / buckets.length;
  const chiSquare = buckets.reduce((sum, n) => sum + (n - expected) ** 2 / expected, 0);
  // 19 degrees of freedom: P(chi2 > 51.0) ~ 1e-4 for a uniform source.
  console.log(`# uniformity: 20 buckets of ${window / 20} s, chi2 = ${chiSquare.toFixed(2)} (df 19, limit 51.0), offsets ${min}..${max} s`);
  assert.ok(chiSquare < 51.0, `chi-square ${chiSquare.toFixed(2)} over buckets ${buckets.join(',')}`);
});

test('generate: a label replaces the random id; bad labels are refused as values', () => {
  const c = must(generate({ secret: 's', ttl: 60, now: NOW, label: 'alice@example' }));
  assert.match(c.username, /^\d+:alice@example$/);
  for (const label of ['', 'a:b', 'has space', 'x'.repeat(129), 'ünïcode']) {
    const r = generate({ secret: 's', ttl: 60, now: NOW, label });
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.error.code, 'invalid-label');
  }
});

test('generate: jitter 0 gives the exact expiry; invalid options are errors with codes', () => {
  const exact = must(generate({ secret: 's', ttl: 60, now: NOW, jitter: 0 }));
  assert.equal(exact.expiry, NOW / 1000 + 60);
  const cases: [Parameters<typeof generate>[0], string][] = [
    [{ secret: '', ttl: 60 }, 'invalid-secret'],
    [{ secret: 's', ttl: 0 }, 'invalid-option'],
    [{ secret: 's', ttl: -5 }, 'invalid-option'],
    [{ secret: 's', ttl: 1.5 }, 'invalid-option'],
    [{ secret: 's', ttl: Number.NaN }, 'invalid-option'],
    [{ secret: 's', ttl: 60, jitter: 60 }, 'invalid-option'],
    [{ secret: 's', ttl: 60, jitter: -1 }, 'invalid-option'],
  ];
  for (const [options, code] of cases) {
    const r = generate(options);
    assert.equal(r.ok, false, JSON.stringify(options));
    if (!r.ok) {
      assert.equal(r.error.code, code);
      assert.ok(r.error.reason.length > 0);
    }
  }
});

test('generate: an injected random source makes output reproducible', () => {
  const fixed: RandomSource = { bytes: (n) => new Uint8Array(n).fill(7), int: (min) => min };
  const a = must(generate({ secret: 's', ttl: 100, now: NOW, random: fixed }));
  const b = must(generate({ secret: 's', ttl: 100, now: NOW, random: fixed }));
  assert.deepEqual(a, b);
  assert.equal(a.expiry, NOW / 1000 + 99);
});

test('generateSecret: 32 random bytes as hex by default; too short is refused', () => {
  const a = must(generateSecret());
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(a, must(generateSecret()));
  const short = generateSecret(8);
  assert.equal(short.ok, false);
});
