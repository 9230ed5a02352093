// Telling Tor's SOCKS port from another SOCKS5 proxy (ssh -D, dante, microsocks), by the answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeTorAnswers } from '../src/tor-socks-check.js';

const b = (...x: number[]): Buffer => Buffer.from(x);
const RESOLVED = b(5, 0, 0, 1, 127, 0, 0, 1, 0, 0);

test('Tor: username/password accepted with any values, and its RESOLVE extension answered', () => {
  assert.equal(judgeTorAnswers([b(5, 2)]), undefined, 'more to ask');
  assert.equal(judgeTorAnswers([b(5, 2), b(1, 0)]), undefined);
  assert.deepEqual(judgeTorAnswers([b(5, 2), b(1, 0), RESOLVED]), { kind: 'tor' });
});

test('not Tor: no username/password (ssh -D, microsocks), made-up credentials refused, RESOLVE unknown, not SOCKS5', () => {
  const cases: [Buffer[], RegExp][] = [
    [[b(5, 0xff)], /refuses username\/password/],
    [[b(5, 0)], /refuses username\/password/],
    [[b(5, 2), b(1, 1)], /refused made-up credentials/],
    [[b(5, 2), b(1, 0), b(5, 7, 0, 1, 0, 0, 0, 0, 0, 0)], /RESOLVE extension/],
    [[b(4, 90)], /does not answer SOCKS5/],
  ];
  for (const [answers, reason] of cases) {
    const v = judgeTorAnswers(answers);
    assert.equal(v?.kind, 'not-tor', JSON.stringify(answers));
    assert.match((v as { reason: string }).reason, reason);
  }
});
