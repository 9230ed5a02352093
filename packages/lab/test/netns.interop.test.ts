// A namespace command that fails says which command, in which namespace, and what the tool
// printed, in the error it throws; none of it lands on the caller's own stderr (a test's output).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const script = `
import { NetNamespace } from ${JSON.stringify(new URL('../src/netns.js', import.meta.url).href)};
const ns = NetNamespace.create([]);
try {
  ns.run('ip', ['link', 'set', 'no-such-link', 'up']);
  console.log('no error');
} catch (err) {
  console.log(err.message);
} finally {
  ns.delete();
}
`;

test('a failing command in a namespace: its stderr in the error thrown, not on our own stderr', () => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `the script itself failed: ${r.stderr}`);
  assert.match(r.stdout, /^ip link set no-such-link up in namespace onionturn-[0-9a-f]{8} failed: .*(Cannot find device|does not exist)/m);
  assert.equal(r.stderr, '', "nothing on the caller's stderr");
});
