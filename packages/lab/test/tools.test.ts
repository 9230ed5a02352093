import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findExecutable, requireTool } from '../src/index.js';

test('findExecutable finds node and not a made-up name', () => {
  assert.ok(findExecutable('node'));
  assert.equal(findExecutable('no-such-tool-onionturn-xyz'), undefined);
});

test('requireTool names the Debian package when it cannot install', () => {
  assert.throws(
    () => requireTool({ command: 'no-such-tool-onionturn-xyz', debianPackage: 'no-such-package-onionturn-xyz' }),
    /apt-get install -y no-such-package-onionturn-xyz/,
  );
});
