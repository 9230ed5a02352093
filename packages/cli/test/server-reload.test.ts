// SIGHUP re-reads the config file, with the precedence of startup: flags and env win over it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reloadedArgs } from '../src/commands/server.js';

test('SIGHUP: the config file replaces its own policy/users/secrets, never ones given as flags or env', () => {
  const args = { peerPolicy: ['reject *:25'], user: ['alice:pw'], secretFile: ['/from/file'], realm: 'r' };
  const file = { 'peer-policy': ['accept *:*'], user: ['mallory:x'], secretFile: ['/new/file'] };
  const argv = ['server', '--peer-policy', 'reject *:25', '--user=alice:pw'];
  const out = reloadedArgs(args, file, argv, {});
  assert.deepEqual(out.peerPolicy, ['reject *:25'], 'flag wins');
  assert.deepEqual(out.user, ['alice:pw'], 'flag (--name=value) wins');
  assert.deepEqual(out.secretFile, ['/new/file'], 'only in the file: reloaded');
  assert.equal(out.realm, 'r');
  const env = reloadedArgs(args, file, ['server'], { ONIONTURN_SECRET_FILE: '/env' });
  assert.deepEqual(env.secretFile, ['/from/file'], 'env wins');
  assert.deepEqual(env.peerPolicy, ['accept *:*']);
  assert.deepEqual(reloadedArgs(args, file, ['server', '--peerPolicy', 'x'], {}).peerPolicy, ['reject *:25'], 'camelCase flag');
});
