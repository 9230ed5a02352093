import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { consensusMicrodescDigests, microdescDigests } from '../src/index.js';

const digest = (body: string): string => createHash('sha256').update(body).digest('base64').replace(/=+$/, '');

test('microdesc digests cover onion-key..end, excluding @annotations', () => {
  const md1 = 'onion-key\n-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\nntor-onion-key abc\np accept 1-65535\n';
  const md2 = 'onion-key\n-----BEGIN RSA PUBLIC KEY-----\nBBBB\n-----END RSA PUBLIC KEY-----\nntor-onion-key def\n';
  const cache = `@last-listed 2026-01-01 00:00:00\n${md1}@last-listed 2026-01-01 00:00:00\n${md2}`;
  assert.deepEqual([...microdescDigests(cache)], [digest(md1), digest(md2)]);
  assert.deepEqual([...microdescDigests(md1 + md2)], [digest(md1), digest(md2)]);
  assert.equal(microdescDigests('').size, 0);
});

test('consensus "m" lines give one digest per relay', () => {
  const consensus =
    'network-status-version 3 microdesc\nr auth0 AAAA 2026-01-01 00:00:00 127.0.0.1 5000 0\nm abcDEF+/1\ns Exit Fast\nr auth1 BBBB 2026-01-01 00:00:00 127.0.0.1 5001 0\nm xyz\n';
  assert.deepEqual(consensusMicrodescDigests(consensus), ['abcDEF+/1', 'xyz']);
});
