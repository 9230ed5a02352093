// The tor image's entrypoint (docker/tor/entrypoint.sh) run on the host exactly as the image runs
// it: in a private mount namespace of this test (unshare), the files the Dockerfile copies appear
// at /usr/local/share/onionturn-tor, and /tmp, /var/lib/tor and /etc/tor are temp dirs of this
// test; the real Debian tor then checks the torrc it wrote (`--verify-config`). No Docker engine
// needed: this is the cheap check of what the env of the tor container can and cannot do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TOOLS, repoRoot, requireTool, runCommand, tempDir, type CommandResult } from '@onionturn/testkit';
import { stageImageFiles, unshareForMounts } from './entrypoint-stage.js';

const ROOT = repoRoot() ?? process.cwd();
const TOR_DIR = join(ROOT, 'docker', 'tor');

interface EntrypointRun extends CommandResult {
  /** /tmp/torrc as the entrypoint left it, if it wrote one. */
  readonly torrc: string | undefined;
  /** /var/lib/tor/onionturn/ob_config (Onionbalance backend), if written. */
  readonly obConfig: string | undefined;
}

/** Runs the entrypoint with exactly `env` (plus PATH) and `args` (default: tor's --verify-config). */
async function runEntrypoint(env: Record<string, string>, args: readonly string[] = ['--verify-config']): Promise<EntrypointRun> {
  const unshare = unshareForMounts();
  const tor = requireTool(TOOLS.tor);
  const dir = tempDir('onionturn-tor-entrypoint-');
  try {
    // What `COPY entrypoint.sh healthcheck.sh torrc.onion torrc.exit /usr/local/share/onionturn-tor/` copies.
    const share = stageImageFiles(TOR_DIR, dir, 'onionturn-tor');
    const etc = join(dir, 'etc-tor');
    mkdirSync(join(etc, 'torrc.d'), { recursive: true });
    const lib = join(dir, 'var-lib-tor');
    mkdirSync(lib, { mode: 0o700 });
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    // /tmp last: the other sources live under the host's /tmp.
    const script =
      'set -e; mount --bind "$1" /usr/local/share; mount --bind "$2" /etc/tor; mount --bind "$3" /var/lib/tor; mount --bind "$4" /tmp; shift 4; exec /usr/local/share/onionturn-tor/entrypoint.sh "$@"';
    const r = await runCommand(unshare, ['--mount', '--propagation', 'private', '/bin/sh', '-c', script, 'sh', share, etc, lib, tmp, ...args], {
      env: { PATH: `${dirname(tor)}:/usr/sbin:/usr/bin:/sbin:/bin`, ...env },
      timeoutMs: 60_000,
    });
    const torrc = join(tmp, 'torrc');
    const obConfig = join(lib, 'onionturn', 'ob_config');
    return {
      ...r,
      torrc: existsSync(torrc) ? readFileSync(torrc, 'utf8') : undefined,
      obConfig: existsSync(obConfig) ? readFileSync(obConfig, 'utf8') : undefined,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A v3 onion address (any 56 base32 characters pass the entrypoint's shape check). */
const FRONTEND = `${'a'.repeat(52)}2345.onion`;

const EXIT_ENV = { TOR_MODE: 'exit', TOR_NICKNAME: 'onionturntest', TOR_CONTACT: 'abuse@example.org' } as const;

/** The settings lines of a torrc (no comments, no blank lines). */
function settings(torrc: string | undefined): string[] {
  return (torrc ?? '').split('\n').filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
}

/** A refusal: exit 2, exactly one line on stderr, tor never ran, no torrc written. */
function assertRefused(r: EntrypointRun, pattern: RegExp, what: string): void {
  const detail = `${what}: exit ${String(r.code)}\nstderr: ${JSON.stringify(r.stderr)}\nstdout: ${r.stdout.slice(-500)}\ntorrc:\n${r.torrc ?? '(none)'}`;
  assert.equal(r.code, 2, detail);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one clear line on stderr; ${detail}`);
  assert.match(lines[0] ?? '', pattern, detail);
  assert.equal(r.stdout, '', `tor must not run; ${detail}`);
  assert.equal(r.torrc, undefined, `no torrc may be written; ${detail}`);
}

test('tor entrypoint: a literal \\n in a value does not become a torrc line (no ControlPort injection)', async () => {
  const injected = 'abuse@example.org\\nControlPort 0.0.0.0:9051';
  const r = await runEntrypoint({ ...EXIT_ENV, TOR_CONTACT: injected });
  assert.ok(!settings(r.torrc).some((line) => /^ControlPort\b/i.test(line)), `a ControlPort line was injected:\n${r.torrc ?? ''}`);
  assertRefused(r, /^onionturn-tor: TOR_CONTACT may not contain a backslash$/, 'TOR_CONTACT with a literal \\n');
});

test('tor entrypoint: every variable with a control character is refused with one line and exit 2', async () => {
  const controls: Record<string, string> = { newline: '\n', 'carriage return': '\r', tab: '\t', escape: '\x1b', 'vertical tab': '\v', delete: '\x7f' };
  const cases: { name: string; base: Record<string, string>; value: string }[] = [
    { name: 'TOR_MODE', base: {}, value: 'onion' },
    { name: 'ONION_PORT', base: {}, value: '3478' },
    { name: 'ONION_TARGET', base: {}, value: '127.0.0.1:3478' },
    { name: 'ONION_MAX_STREAMS', base: {}, value: '64' },
    { name: 'TOR_NICKNAME', base: EXIT_ENV, value: 'onionturntest' },
    { name: 'TOR_CONTACT', base: EXIT_ENV, value: 'abuse@example.org' },
    { name: 'TOR_ORPORT', base: EXIT_ENV, value: '9001' },
    { name: 'TOR_EXIT_POLICY', base: EXIT_ENV, value: 'accept *:5349, reject *:*' },
    { name: 'ONIONBALANCE_FRONTEND', base: {}, value: FRONTEND },
  ];
  for (const c of cases) {
    // Every kind for free-text values, the two line breaks for the rest (each run costs ~0.2 s).
    const kinds = ['TOR_CONTACT', 'ONION_TARGET'].includes(c.name) ? Object.entries(controls) : Object.entries(controls).slice(0, 2);
    for (const [label, ch] of kinds) {
      const r = await runEntrypoint({ ...c.base, [c.name]: `${c.value}${ch}ControlPort 0.0.0.0:9051` });
      assertRefused(r, new RegExp(`^onionturn-tor: ${c.name} contains a control character`), `${c.name} with a ${label}`);
    }
  }
});

test('tor entrypoint: values reach tor verbatim, one line each (sed metacharacters included)', async () => {
  const env = {
    ...EXIT_ENV,
    TOR_CONTACT: 'R&D team <abuse AT example dot org> | ciissversion:2 @TOR_NICKNAME@',
    TOR_ORPORT: '127.0.0.1:9101',
    TOR_EXIT_POLICY: 'accept 192.0.2.0/24:5349, accept *:3478-3479, reject *:*',
  };
  const r = await runEntrypoint(env);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /Configuration was valid/);
  const lines = settings(r.torrc);
  for (const expected of [
    'Nickname onionturntest',
    `ContactInfo ${env.TOR_CONTACT}`,
    'ORPort 127.0.0.1:9101',
    `ExitPolicy ${env.TOR_EXIT_POLICY}`,
    'ExitRelay 1',
    'ExitPolicyRejectPrivate 1',
    'ExitPolicyRejectLocalInterfaces 1',
    'SocksPort 0',
  ]) {
    assert.equal(lines.filter((l) => l === expected).length, 1, `exactly one '${expected}' in:\n${r.torrc ?? ''}`);
  }
  assert.equal(lines.at(-1), '%include /etc/tor/torrc.d/*.conf', 'site settings come last');
});

test('tor entrypoint: values of the wrong shape are refused with one line and exit 2', async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ TOR_MODE: 'relay' }, /^onionturn-tor: TOR_MODE must be 'onion' or 'exit', got 'relay'$/],
    [{ ONION_PORT: '70000' }, /^onionturn-tor: ONION_PORT must be a port number/],
    [{ ONION_PORT: '3478 127.0.0.1:22' }, /^onionturn-tor: ONION_PORT must be a port number/],
    [{ ONION_TARGET: '127.0.0.1:3478 # x' }, /^onionturn-tor: ONION_TARGET must be/],
    [{ ONION_MAX_STREAMS: '0' }, /^onionturn-tor: ONION_MAX_STREAMS must be/],
    [{ TOR_MODE: 'exit', TOR_CONTACT: 'abuse@example.org' }, /^onionturn-tor: TOR_MODE=exit needs TOR_NICKNAME$/],
    [{ TOR_MODE: 'exit', TOR_NICKNAME: 'onionturntest' }, /^onionturn-tor: TOR_MODE=exit needs TOR_CONTACT/],
    [{ ...EXIT_ENV, TOR_NICKNAME: 'bad nick' }, /^onionturn-tor: TOR_NICKNAME must be 1-19 letters and digits/],
    [{ ...EXIT_ENV, TOR_NICKNAME: 'a'.repeat(20) }, /^onionturn-tor: TOR_NICKNAME must be 1-19 letters and digits/],
    [{ ...EXIT_ENV, TOR_ORPORT: '9001;x' }, /^onionturn-tor: TOR_ORPORT must be/],
    [{ ...EXIT_ENV, TOR_EXIT_POLICY: 'accept *:* "' }, /^onionturn-tor: TOR_EXIT_POLICY must be/],
    [{ ...EXIT_ENV, TOR_EXIT_POLICY: 'accept *:*\\' }, /^onionturn-tor: TOR_EXIT_POLICY must be/],
    [{ ONIONBALANCE_FRONTEND: FRONTEND.replace('.onion', '') }, /^onionturn-tor: ONIONBALANCE_FRONTEND must be the frontend's v3 address/],
    [{ ONIONBALANCE_FRONTEND: FRONTEND.toUpperCase() }, /^onionturn-tor: ONIONBALANCE_FRONTEND must be the frontend's v3 address/],
    [{ ONIONBALANCE_FRONTEND: `a${FRONTEND}` }, /^onionturn-tor: ONIONBALANCE_FRONTEND must be the frontend's v3 address/],
    [{ ONIONBALANCE_FRONTEND: `${FRONTEND.slice(0, 55)}.onion.onion` }, /^onionturn-tor: ONIONBALANCE_FRONTEND must be the frontend's v3 address/],
  ];
  for (const [env, pattern] of cases) assertRefused(await runEntrypoint(env), pattern, JSON.stringify(env));
});

test('tor entrypoint: onion mode turns on the onion-service defences (PoW, stream limit that closes the circuit) and the PROXY header with the circuit id', async () => {
  const tor = requireTool(TOOLS.tor);
  // The packaged tor knows these options (PoW needs tor >= 0.4.8 built with it, as Debian's is).
  const options = await runCommand(tor, ['--list-torrc-options'], { timeoutMs: 20_000 });
  for (const option of [
    'HiddenServicePoWDefensesEnabled',
    'HiddenServiceMaxStreams',
    'HiddenServiceMaxStreamsCloseCircuit',
    'HiddenServiceExportCircuitID',
    'VanguardsLiteEnabled',
  ]) {
    assert.ok(options.stdout.split('\n').includes(option), `tor --list-torrc-options lacks ${option}`);
  }
  const r = await runEntrypoint({});
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /Configuration was valid/);
  assert.doesNotMatch(r.stdout, /\[warn\].*(PoW|HiddenService)/i, 'tor warns about the onion-service options');
  const lines = settings(r.torrc);
  const dirAt = lines.indexOf('HiddenServiceDir /var/lib/tor/onionturn');
  assert.ok(dirAt >= 0, r.torrc);
  // Per-service options apply to the HiddenServiceDir before them: all must follow ours.
  for (const expected of [
    'HiddenServicePort 3478 127.0.0.1:3478',
    'HiddenServicePoWDefensesEnabled 1',
    'HiddenServiceMaxStreams 256',
    'HiddenServiceMaxStreamsCloseCircuit 1',
    // The server reads it in onion mode (--tor-circuit-id, docker/server/entrypoint.sh).
    'HiddenServiceExportCircuitID haproxy',
  ]) {
    const at = lines.indexOf(expected);
    assert.ok(at > dirAt, `'${expected}' after the HiddenServiceDir in:\n${r.torrc ?? ''}`);
  }
  const custom = await runEntrypoint({ ONION_PORT: '443', ONION_TARGET: '127.0.0.1:5349', ONION_MAX_STREAMS: '64' });
  assert.equal(custom.code, 0, custom.stderr + custom.stdout);
  assert.ok(settings(custom.torrc).includes('HiddenServicePort 443 127.0.0.1:5349'), custom.torrc);
  assert.ok(settings(custom.torrc).includes('HiddenServiceMaxStreams 64'), custom.torrc);
});

test('tor entrypoint: ONIONBALANCE_FRONTEND makes the onion service an Onionbalance backend (ob_config + HiddenServiceOnionbalanceInstance)', async () => {
  const r = await runEntrypoint({ ONIONBALANCE_FRONTEND: FRONTEND });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /Configuration was valid/);
  const lines = settings(r.torrc);
  const dirAt = lines.indexOf('HiddenServiceDir /var/lib/tor/onionturn');
  const at = lines.indexOf('HiddenServiceOnionbalanceInstance 1');
  assert.ok(dirAt >= 0 && at > dirAt, `HiddenServiceOnionbalanceInstance after our HiddenServiceDir in:\n${r.torrc ?? ''}`);
  assert.equal(r.obConfig, `MasterOnionAddress ${FRONTEND}\n`);
  const plain = await runEntrypoint({});
  assert.ok(!settings(plain.torrc).includes('HiddenServiceOnionbalanceInstance 1'), plain.torrc);
  assert.equal(plain.obConfig, undefined);
});
