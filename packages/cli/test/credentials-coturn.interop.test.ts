// Credentials printed by the real `onionturn credentials` against a real coturn 4.6
// (`turnserver --use-auth-secret`), with coturn's own client and echo peer relaying over loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRestUsername } from '@onionturn/credentials';
import { ProcessGroup, runUclient, sleep, startCoturn, startTurnutilsPeer, type Coturn, type UclientResult } from '@onionturn/testkit';
import { runCli, tempDir } from './run-cli.js';

const NEW_SECRET = 'rotation-new-0f3c9a';
const OLD_SECRET = 'rotation-old-7b21e4';

interface Printed {
  readonly username: string;
  readonly password: string;
}

async function printCredential(secretFile: string, extra: readonly string[] = []): Promise<Printed> {
  const r = await runCli(['credentials', '--secret-file', secretFile, '--uri', 'turn:127.0.0.1:3478', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  const body = JSON.parse(r.stdout) as { username?: string; password?: string; credential?: string };
  return { username: body.username ?? '', password: body.password ?? body.credential ?? '' };
}

function assertRelayed(coturn: Coturn, c: Printed, run: UclientResult, what: string): void {
  assert.equal(run.exitCode, 0, `${what}: uclient exit ${run.exitCode}\n${run.output.slice(-1500)}`);
  assert.ok(run.sent !== undefined && run.sent > 0, `${what}: nothing sent`);
  assert.equal(run.received, run.sent, `${what}: relayed ${run.received} of ${run.sent}`);
  assert.ok(
    coturn.userLog(c.username).some((l) => /ALLOCATE processed, success/.test(l)),
    `${what}: coturn logged no successful allocation for ${c.username}`,
  );
}

function assertRefused(coturn: Coturn, c: Printed, run: UclientResult, what: string): void {
  assert.notEqual(run.exitCode, 0, `${what}: uclient succeeded`);
  assert.ok(run.allocationFailed, `${what}: uclient exit ${run.exitCode} signal ${run.signal}: ${run.output.slice(-800)}`);
  const lines = coturn.userLog(c.username);
  assert.ok(
    lines.some((l) => /error 401: Unauthorized/.test(l)),
    `${what}: coturn did not answer 401 for ${c.username}:\n${lines.join('\n')}`,
  );
  assert.ok(!lines.some((l) => /ALLOCATE processed, success/.test(l)), `${what}: coturn allocated anyway`);
}

test('coturn accepts onionturn credentials and refuses tampered, expired and foreign ones with 401; secrets rotate', async (t) => {
  const dir = tempDir(t);
  const newFile = join(dir, 'new');
  const oldFile = join(dir, 'old');
  writeFileSync(newFile, `${NEW_SECRET}\n`, { mode: 0o600 });
  writeFileSync(oldFile, `${OLD_SECRET}\n`, { mode: 0o600 });
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  // `current` knows only the new secret; `rotating` knows both, newest first (draft §5.2).
  const [current, rotating, peer] = await Promise.all([
    startCoturn(group, { secrets: [NEW_SECRET] }),
    startCoturn(group, { secrets: [NEW_SECRET, OLD_SECRET] }),
    startTurnutilsPeer(group),
  ]);

  // Valid: JSON format over TURN/TCP, ICE format over TURN/UDP.
  const viaTcp = await printCredential(newFile);
  const viaUdp = await printCredential(newFile, ['--format', 'ice', '--ttl', '600']);
  const [tcpRun, udpRun] = await Promise.all([
    runUclient(group, { server: current, peer, username: viaTcp.username, password: viaTcp.password, tcp: true }),
    runUclient(group, { server: current, peer, username: viaUdp.username, password: viaUdp.password, tcp: false }),
  ]);
  assertRelayed(current, viaTcp, tcpRun, 'TURN/TCP');
  assertRelayed(current, viaUdp, udpRun, 'TURN/UDP');

  // Refused: a tampered password, an expired username (2 s ttl, no jitter, then waited out),
  // and a credential from another secret.
  const expiring = await printCredential(newFile, ['--ttl', '2', '--jitter', '0']);
  const tamperedBase = await printCredential(newFile);
  const tampered = { ...tamperedBase, password: (tamperedBase.password.startsWith('A') ? 'B' : 'A') + tamperedBase.password.slice(1) };
  const foreign = await printCredential(oldFile);
  const expiry = parseRestUsername(expiring.username)?.expiry ?? 0;
  await sleep(Math.max(0, (expiry + 1) * 1000 - Date.now() + 200));
  const [tamperedRun, expiredRun, foreignRun] = await Promise.all(
    [tampered, expiring, foreign].map((c) => runUclient(group, { server: current, peer, username: c.username, password: c.password })),
  );
  assertRefused(current, tampered, tamperedRun!, 'tampered password');
  assertRefused(current, expiring, expiredRun!, 'expired username');
  assertRefused(current, foreign, foreignRun!, 'credential from another secret');

  // Rotation: while both secrets are configured, a credential from the older one works; on the
  // server that dropped it (`current`, above) the same kind of credential got 401.
  const fromOld = await printCredential(oldFile);
  const fromNew = await printCredential(newFile);
  const [oldRun, newRun] = await Promise.all(
    [fromOld, fromNew].map((c) => runUclient(group, { server: rotating, peer, username: c.username, password: c.password })),
  );
  assertRelayed(rotating, fromOld, oldRun!, 'older secret during rotation');
  assertRelayed(rotating, fromNew, newRun!, 'newer secret during rotation');
  const afterRemoval = await runUclient(group, { server: current, peer, username: fromOld.username, password: fromOld.password });
  assertRefused(current, fromOld, afterRemoval, 'older secret after removal');
});
