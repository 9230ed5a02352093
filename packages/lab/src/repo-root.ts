// The workspace root (the package.json with "workspaces"), found from this file's location.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function repoRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { workspaces?: unknown }).workspaces) return dir;
      } catch {
        // not a readable package.json: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The `onionturn` CLI entry point of this checkout. */
export function onionturnBin(): string {
  const root = repoRoot();
  if (!root) throw new Error('cannot find the onionturn workspace root');
  return join(root, 'packages', 'cli', 'bin', 'onionturn.js');
}
