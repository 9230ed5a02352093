// --max-queue-delay-ms on both commands: a bad value is one line saying what is wrong, exit 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../src/main.js';

async function run(argv: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const code = await main(argv, { stdout: () => undefined, stderr: (t) => void (stderr += t) });
  return { code, stderr };
}

for (const bad of ['-1', '1.5', 'soon']) {
  test(`server --max-queue-delay-ms ${bad}: one line, exit 2`, async () => {
    const r = await run(['server', '--user', 'a:b', '--listen', 'tcp://127.0.0.1:0', '--max-queue-delay-ms', bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^onionturn: --max-queue-delay-ms must be a whole number >= 0 \(0: no time bound\), got '.*'\n$/);
  });
  test(`client --max-queue-delay-ms ${bad}: one line, exit 2`, async () => {
    const r = await run(['client', '--server', 'tcp://127.0.0.1:9', '--max-queue-delay-ms', bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^onionturn: --max-queue-delay-ms must be a whole number >= 0 \(0: no time bound\), got '.*'\n$/);
  });
}
