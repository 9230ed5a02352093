// REST-secret credential lookup (coturn use-auth-secret compatible).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { restPassword } from '@onionturn/credentials';
import { restSecrets } from '../src/index.js';

test('REST secrets: every secret newest first, expiry carried, expired and too-far usernames unknown', () => {
  const now = 1_700_000_000_000;
  const lookup = restSecrets({ secrets: ['new', 'old'], maxTtl: 3600 });
  const user = `${now / 1000 + 600}:abc`;
  const c = lookup(user, 'r', now);
  assert.deepEqual(c, { passwords: [restPassword('new', user), restPassword('old', user)], expiresAtMs: now + 600_000 });
  assert.equal(lookup(`${now / 1000 - 3600}:abc`, 'r', now), undefined);
  assert.equal(lookup(`${now / 1000 + 86400}:abc`, 'r', now), undefined);
  assert.equal(lookup('alice', 'r', now), undefined);
});
