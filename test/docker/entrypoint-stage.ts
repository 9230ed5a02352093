// What the image entrypoint tests share: running an image's entrypoint on the host at its
// in-image path, in a private mount namespace (unshare --mount), with the files its Dockerfile
// copies staged under a temp dir that the test then bind-mounts over /usr/local/share.
import { chmodSync, copyFileSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TOOLS, requireTool } from '@onionturn/testkit';

/** unshare, after checking that this process may make a mount namespace (root). */
export function unshareForMounts(): string {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new Error('this test needs root (a private mount namespace: unshare --mount)');
  return requireTool(TOOLS.unshare);
}

/**
 * Copies the files of `imageDir` (what its Dockerfile's COPY puts in /usr/local/share/`name`)
 * into `dir`/usr-local-share/`name`, entrypoint.sh executable. Returns the usr-local-share dir
 * (to bind-mount over /usr/local/share).
 */
export function stageImageFiles(imageDir: string, dir: string, name: string): string {
  const share = join(dir, 'usr-local-share');
  const image = join(share, name);
  mkdirSync(image, { recursive: true });
  for (const file of readdirSync(imageDir)) {
    if (statSync(join(imageDir, file)).isFile()) copyFileSync(join(imageDir, file), join(image, file));
  }
  chmodSync(join(image, 'entrypoint.sh'), 0o755);
  return share;
}
