// The Onionbalance frontend image's entrypoint (docker/onionbalance/entrypoint.sh) run on the host
// at its in-image path, in a private mount namespace of this test (unshare): the files the
// Dockerfile copies appear at /usr/local/share/onionturn-onionbalance and /tmp is a temp dir of
// this test. Only refusals are checked here (they come before tor starts); the accepted values run
// in the compose test's frontend container (test/docker/compose.e2e.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, runCommand, tempDir } from '@onionturn/testkit';
import { stageImageFiles, unshareForMounts } from './entrypoint-stage.js';

const ROOT = repoRoot() ?? process.cwd();
const IMAGE_DIR = join(ROOT, 'docker', 'onionbalance');

/** Runs the entrypoint with exactly `env` (plus PATH and a readable config); exit code, output, whether it wrote a torrc. */
async function runEntrypoint(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string; wroteTorrc: boolean }> {
  const unshare = unshareForMounts();
  const dir = tempDir('onionturn-ob-entrypoint-');
  try {
    // What `COPY entrypoint.sh run-onionbalance.py /usr/local/share/onionturn-onionbalance/` copies.
    const share = stageImageFiles(IMAGE_DIR, dir, 'onionturn-onionbalance');
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    writeFileSync(join(tmp, 'config.yaml'), 'services: []\n');
    // /tmp last: the other source lives under the host's /tmp. tor is /bin/false in here: should
    // a value wrongly pass, the entrypoint stops at `tor --verify-config` and no tor ever dials out.
    const script =
      'set -e; mount --bind "$1" /usr/local/share; mount --bind "$2" /tmp; ' +
      'for t in /usr/bin/tor /usr/sbin/tor; do if [ -e "$t" ]; then mount --bind /bin/false "$t"; fi; done; ' +
      'exec /usr/local/share/onionturn-onionbalance/entrypoint.sh';
    const r = await runCommand(unshare, ['--mount', '--propagation', 'private', '/bin/sh', '-c', script, 'sh', share, tmp], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ONIONBALANCE_CONFIG: '/tmp/config.yaml', ...env },
      timeoutMs: 30_000,
    });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr, wroteTorrc: existsSync(join(tmp, 'torrc')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('onionbalance entrypoint: a bad ONIONBALANCE_INITIAL_DELAY or ONIONBALANCE_LOG_LEVEL is refused with one line and exit 2, before tor starts', async () => {
  const delay = (got: string): RegExp =>
    new RegExp(
      `^onionturn-onionbalance: ONIONBALANCE_INITIAL_DELAY must be whole seconds from 0 to 600 \\(default 45\\), got '${got.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'$`,
    );
  const cases: [Record<string, string>, RegExp][] = [
    ...['soon', '-1', '601', '05', '4.5', ' 5', '1e3', '5s'].map((v): [Record<string, string>, RegExp] => [{ ONIONBALANCE_INITIAL_DELAY: v }, delay(v)]),
    [{ ONIONBALANCE_LOG_LEVEL: 'loud' }, /^onionturn-onionbalance: ONIONBALANCE_LOG_LEVEL must be debug, info, warning, error or critical, got 'loud'$/],
  ];
  for (const [env, pattern] of cases) {
    const r = await runEntrypoint(env);
    const detail = `${JSON.stringify(env)}: exit ${String(r.code)}\nstderr: ${JSON.stringify(r.stderr)}\nstdout: ${r.stdout.slice(-500)}`;
    assert.equal(r.code, 2, detail);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 1, `one clear line on stderr; ${detail}`);
    assert.match(lines[0] ?? '', pattern, detail);
    assert.equal(r.stdout, '', `tor must not run; ${detail}`);
    assert.equal(r.wroteTorrc, false, `no torrc may be written; ${detail}`);
  }
});
