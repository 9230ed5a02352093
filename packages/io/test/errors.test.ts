import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorCode, errorText } from '../src/index.js';

test('errorCode: the code, never the message (which can name a remote ip:port)', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 192.0.2.7:3478'), { code: 'ECONNREFUSED' });
  assert.equal(errorCode(refused), 'ECONNREFUSED');
  assert.equal(errorCode(new TypeError('bad 192.0.2.7')), 'TypeError');
  assert.equal(errorCode(Object.assign(new Error('x'), { code: 42 })), 'Error');
  assert.equal(errorCode('a string'), 'non-error thrown');
  assert.equal(errorCode(undefined), 'non-error thrown');
});

test("errorText: the code, else the message (for errors about the user's own files and addresses)", () => {
  assert.equal(errorText(Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' })), 'ENOENT');
  assert.equal(errorText(new Error('PEM routines::no start line')), 'PEM routines::no start line');
  assert.equal(errorText('plain'), 'plain');
});
