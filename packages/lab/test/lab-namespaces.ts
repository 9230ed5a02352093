// What the interop tests of the congested relay share: a child script run in a lab namespace like
// bench:call's, and the check that it left no namespace behind.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createLabNamespace, LAB_NAMESPACE_ENV, type LabProfile } from '../src/index.js';

const run = promisify(execFile);

/** The host's network namespaces by name. */
function namespaces(): string[] {
  // stderr ignored: `ip netns list` says "Peer netns reference is invalid" for a namespace another
  // test deletes as it lists.
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

/**
 * Runs `child` (an ES module's text; its argv: the lab module's URL, the profile's name) in a lab
 * namespace with `profile`'s settings, and returns its last line of output as JSON. Afterwards the
 * namespace is gone, and so is any relay or router namespace of a child killed before it could
 * delete them; asserts that none is left.
 */
export async function runInTestLab<T>(profile: LabProfile, child: string, timeoutMs: number): Promise<T> {
  const ns = createLabNamespace(profile.namespace!);
  // Only this lab's own: other test files run at the same time make namespaces of their own.
  const ours = (): string[] => namespaces().filter((n) => n === ns.name || n.startsWith(`${ns.name}-`));
  let out: string;
  try {
    const [bin, argv] = ns.wrap(process.execPath, ['--input-type=module', '-e', child, new URL('../src/index.js', import.meta.url).href, profile.name]);
    out = (await run(bin, argv, { timeout: timeoutMs, env: { ...process.env, [LAB_NAMESPACE_ENV]: ns.name } })).stdout;
  } finally {
    ns.delete();
    for (const n of ours()) if (/-(relay|router)$/.test(n)) execFileSync('ip', ['netns', 'delete', n]);
  }
  assert.deepEqual(ours(), [], 'no namespace left behind');
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}
