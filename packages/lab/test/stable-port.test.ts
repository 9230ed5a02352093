// npm start's shim port: 3478 when free, else the same fixed fallback each run, else any free one,
// and a line saying which.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STABLE_SHIM_PORTS, chooseStablePort } from '../src/index.js';

const never = (): number => assert.fail('no OS-chosen port needed');

test('the TURN default port when it is free', () => {
  assert.deepEqual(chooseStablePort(STABLE_SHIM_PORTS, new Set(), never), { port: 3478, fallback: false, line: 'shim port 3478 (the same every run)' });
  assert.equal(chooseStablePort(STABLE_SHIM_PORTS, new Set([3479]), never).port, 3478);
});

test('a taken default: the first free fixed fallback, said in a line', () => {
  assert.deepEqual(chooseStablePort(STABLE_SHIM_PORTS, new Set([3478]), never), {
    port: 3479,
    fallback: true,
    line: 'shim port 3478 is taken, using 3479 (the same every run while 3478 stays taken)',
  });
  assert.equal(chooseStablePort(STABLE_SHIM_PORTS, new Set([3478, 3479]), never).port, 3480);
});

test('all fixed ports taken: an OS-chosen one, and the line says it changes', () => {
  const c = chooseStablePort(STABLE_SHIM_PORTS, new Set(STABLE_SHIM_PORTS), () => 12345);
  assert.deepEqual(c, {
    port: 12345,
    fallback: true,
    line: 'shim ports 3478, 3479, 3480 are all taken, using 12345 (chosen for this run only: apps need it changed next time)',
  });
});
