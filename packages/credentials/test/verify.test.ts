import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { checkRestUsername, generate, keysFor, longTermKey, passwordsFor, restPassword, verify, type CredentialErrorCode, type Result } from '../src/index.js';

const NOW = 1_700_000_000_000;
const NOW_S = NOW / 1000;

function issue(secret: string, ttl = 3600, now = NOW): { username: string; password: string } {
  const r = generate({ secret, ttl, now });
  if (!r.ok) assert.fail(r.error.reason);
  return r.value;
}

function failsWith<T>(r: Result<T, { code: CredentialErrorCode }>, code: CredentialErrorCode): void {
  assert.equal(r.ok, false, `expected ${code}`);
  if (!r.ok) assert.equal(r.error.code, code);
}

test('verify accepts a fresh credential and names the secret that signed it', () => {
  const c = issue('new');
  const r = verify(c.username, c.password, { secrets: ['new'], now: NOW });
  assert.ok(r.ok);
  assert.equal(r.value.secretIndex, 0);
});

test('rotation: a credential from the older of two secrets verifies; once the older is removed it does not', () => {
  const old = issue('old-secret');
  const fresh = issue('new-secret');
  const both = { secrets: ['new-secret', 'old-secret'], now: NOW };
  const r = verify(old.username, old.password, both);
  assert.ok(r.ok);
  assert.equal(r.value.secretIndex, 1);
  const n = verify(fresh.username, fresh.password, both);
  assert.ok(n.ok);
  assert.equal(n.value.secretIndex, 0);
  failsWith(verify(old.username, old.password, { secrets: ['new-secret'], now: NOW }), 'wrong-password');
  // passwordsFor lists one candidate per secret, newest first.
  const candidates = passwordsFor(old.username, both);
  assert.ok(candidates.ok);
  assert.deepEqual(
    candidates.value.map((c) => c.secretIndex),
    [0, 1],
  );
  assert.equal(candidates.value[1]?.password, old.password);
});

test('expiry: refused after it passes (beyond the skew), accepted within the skew', () => {
  const c = issue('s', 3600);
  const expiry = Number(c.username.split(':')[0]);
  assert.ok(verify(c.username, c.password, { secrets: ['s'], now: expiry * 1000 }).ok);
  assert.ok(verify(c.username, c.password, { secrets: ['s'], now: (expiry + 60) * 1000 }).ok);
  failsWith(verify(c.username, c.password, { secrets: ['s'], now: (expiry + 61) * 1000 }), 'expired');
  failsWith(verify(c.username, c.password, { secrets: ['s'], now: (expiry + 1) * 1000, clockSkew: 0 }), 'expired');
});

test('max ttl: expiries further ahead than maxTtl (+ skew) are refused, unlike coturn', () => {
  const far = `${NOW_S + 7 * 86400}:x`;
  failsWith(verify(far, restPassword('s', far), { secrets: ['s'], now: NOW }), 'expiry-too-far');
  const edge = `${NOW_S + 3600 + 60}:x`;
  assert.ok(verify(edge, restPassword('s', edge), { secrets: ['s'], now: NOW, maxTtl: 3600 }).ok);
  const over = `${NOW_S + 3600 + 61}:x`;
  failsWith(verify(over, restPassword('s', over), { secrets: ['s'], now: NOW, maxTtl: 3600 }), 'expiry-too-far');
  // An issuer whose clock runs up to the skew ahead still gets through.
  const ahead = issue('s', 3600, NOW + 50_000);
  assert.ok(verify(ahead.username, ahead.password, { secrets: ['s'], now: NOW, maxTtl: 3600 }).ok);
});

test('usernames: malformed ones are refused; a bare expiry (turnutils_uclient -W) is accepted', () => {
  for (const u of ['', 'alice', ':123', 'abc:1700000100', '1700000100x', '-1700000100:a', '1234567890123:a']) {
    failsWith(checkRestUsername(u, { now: NOW }), 'malformed-username');
  }
  const bare = `${NOW_S + 100}`;
  const r = checkRestUsername(bare, { now: NOW });
  assert.ok(r.ok);
  assert.equal(r.value.id, '');
  assert.ok(verify(bare, restPassword('s', bare), { secrets: ['s'], now: NOW }).ok);
});

test('wrong password, other secret and tampered username are refused', () => {
  const c = issue('s');
  failsWith(
    verify(
      c.username,
      c.password.replace(/^./, (ch) => (ch === 'A' ? 'B' : 'A')),
      { secrets: ['s'], now: NOW },
    ),
    'wrong-password',
  );
  failsWith(verify(c.username, '', { secrets: ['s'], now: NOW }), 'wrong-password');
  failsWith(verify(c.username, c.password, { secrets: ['other'], now: NOW }), 'wrong-password');
  const [expiry, id] = c.username.split(':');
  failsWith(verify(`${Number(expiry) - 1}:${id}`, c.password, { secrets: ['s'], now: NOW }), 'wrong-password');
});

test('secrets and options are validated', () => {
  const c = issue('s');
  failsWith(verify(c.username, c.password, { secrets: [], now: NOW }), 'invalid-secret');
  failsWith(verify(c.username, c.password, { secrets: ['s', ''], now: NOW }), 'invalid-secret');
  failsWith(verify(c.username, c.password, { secrets: ['s'], now: NOW, maxTtl: 0 }), 'invalid-option');
  failsWith(verify(c.username, c.password, { secrets: ['s'], now: NOW, clockSkew: -1 }), 'invalid-option');
});

test('long-term keys: MD5 and SHA-256 of username:realm:password, one per secret', () => {
  // Known values from `printf %s '1700000000:onionturn:example.org:pw' | md5sum` / sha256sum.
  assert.equal(longTermKey('1700000000:onionturn', 'example.org', 'pw').toString('hex'), '864a918d8db51237fe7a320704b16ffa');
  assert.equal(
    longTermKey('1700000000:onionturn', 'example.org', 'pw', 'sha256').toString('hex'),
    'a2a6b729c4c658594d4ca502c7177b42acf7f99536dc78b0783f3c8d850f229d',
  );
  const c = issue('b');
  const keys = keysFor(c.username, 'realm', { secrets: ['a', 'b'], now: NOW });
  assert.ok(keys.ok);
  assert.equal(keys.value.length, 2);
  assert.deepEqual(keys.value[1]?.key, createHash('md5').update(`${c.username}:realm:${c.password}`).digest());
  const sha = keysFor(c.username, 'realm', { secrets: ['a', 'b'], now: NOW, algorithm: 'sha256' });
  assert.ok(sha.ok);
  assert.equal(sha.value[0]?.key.length, 32);
  failsWith(keysFor(`${NOW_S - 3600}:x`, 'realm', { secrets: ['a'], now: NOW }), 'expired');
});
