// What the interop tests that build namespaces check afterwards: the host's namespaces, and the
// relay and router namespaces a killed child could have left.
import { execFileSync } from 'node:child_process';

/** The host's network namespaces by name. */
export function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

/** Deletes congested-relay namespaces that appeared since `before` (a child killed before it could). */
export function deleteBottleneckNamespaces(before: ReadonlySet<string>): void {
  for (const n of namespaces()) if (!before.has(n) && /^onionturn-[0-9a-f]+-(relay|router)$/.test(n)) execFileSync('ip', ['netns', 'delete', n]);
}
