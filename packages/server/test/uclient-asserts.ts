// What a user of turnutils_uclient checks after a run: it finished, sent what was asked, and
// every message came back through the relay.
import assert from 'node:assert/strict';
import type { UclientResult } from '@onionturn/testkit';

export function assertEchoed(run: UclientResult, what: string, expected: number): void {
  assert.equal(run.timedOut, false, `${what}: uclient timed out\n${run.output.slice(-1500)}`);
  assert.equal(run.exitCode, 0, `${what}: uclient exit ${run.exitCode}\n${run.output.slice(-1500)}`);
  assert.equal(run.sent, expected, `${what}: sent ${run.sent}\n${run.output.slice(-800)}`);
  assert.equal(run.received, run.sent, `${what}: ${run.received} of ${run.sent} came back\n${run.output.slice(-800)}`);
}
