// `onionturn credentials` and `onionturn secret`, run as real processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRestUsername, verify } from '@onionturn/credentials';
import { REPO_ROOT, cleanEnv, runCli, tempDir } from './run-cli.js';

function secretFile(dir: string, secret = 'cli-test-secret', name = 'secret'): string {
  const path = join(dir, name);
  writeFileSync(path, `  ${secret}\n\n`, { mode: 0o600 });
  return path;
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}

test('--help explains every command and flag; exit 0', async () => {
  const top = await runCli(['--help']);
  assert.equal(top.code, 0);
  for (const word of ['credentials', 'secret <file>', '--config', 'ONIONTURN_']) assert.ok(top.stdout.includes(word), word);
  const cred = await runCli(['credentials', '--help']);
  assert.equal(cred.code, 0);
  for (const flag of ['--secret-file', '--secret ', '--ttl', '--jitter', '--user', '--uri', '--format', 'serve', 'new-secret'])
    assert.ok(cred.stdout.includes(flag), flag);
  const serve = await runCli(['credentials', 'serve', '--help']);
  for (const flag of ['--listen', '--api-key-file', '--api-key ', '--rate-limit', '--no-labels', '--labels', '--cors-origin', '--uri'])
    assert.ok(serve.stdout.includes(flag.replace('--no-labels', 'no-labels')), flag);
});

test('usage errors print one line on stderr and exit 2', async (t) => {
  const dir = tempDir(t);
  const empty = join(dir, 'empty');
  writeFileSync(empty, ' \n');
  const cases: [string[], RegExp][] = [
    [['credentials', '--bogus'], /Unknown argument: bogus/],
    [['credentials'], /no secret/],
    [['credentials', '--secret-file', join(dir, 'missing')], /cannot read secret file .*ENOENT/],
    [['credentials', '--secret-file', empty], /is empty/],
    [['credentials', '--secret', ''], /Not enough arguments|empty/],
    [['credentials', '--secret-file', secretFile(dir), '--ttl', 'abc'], /ttl/],
    [['credentials', '--secret-file', secretFile(dir), '--ttl', '0'], /ttl/],
    [['credentials', '--secret-file', secretFile(dir), '--format', 'xml'], /format/],
    [['credentials', '--secret-file', secretFile(dir), '--format', 'ice'], /needs at least one --uri/],
    [['credentials', '--secret-file', secretFile(dir), '--uri', 'http://x'], /not a turn/],
    [['credentials', '--secret-file', secretFile(dir), '--user', 'a:b'], /--user/],
    [['credentials', '--secret-file', secretFile(dir), '--secret', 'x'], /not both/],
    [['credentials', '--config', join(dir, 'nope.json')], /cannot read config file/],
    [['credentials', 'serve', '--secret-file', secretFile(dir), '--listen', 'nowhere'], /listen address/],
    [['frobnicate'], /Unknown argument: frobnicate/],
    [[], /no command given/],
  ];
  const runs = await Promise.all(cases.map(([args]) => runCli(args)));
  for (const [i, [args, message]] of cases.entries()) {
    const r = runs[i]!;
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
    assert.equal(lines(r.stderr).length, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^onionturn: /);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
});

test('json format: the draft response, verifiable with the secret, expiry jittered below now + ttl', async (t) => {
  const dir = tempDir(t);
  const before = Math.floor(Date.now() / 1000);
  const r = await runCli([
    'credentials',
    '--secret-file',
    secretFile(dir),
    '--ttl',
    '600',
    '--uri',
    'turn:127.0.0.1:3478?transport=tcp',
    '--uri',
    'turn:127.0.0.1:3478',
  ]);
  const after = Math.floor(Date.now() / 1000);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const body = JSON.parse(r.stdout) as { username: string; password: string; ttl: number; uris: string[] };
  assert.deepEqual(Object.keys(body), ['username', 'password', 'ttl', 'uris']);
  assert.equal(body.ttl, 600);
  assert.deepEqual(body.uris, ['turn:127.0.0.1:3478?transport=tcp', 'turn:127.0.0.1:3478']);
  const parsed = parseRestUsername(body.username);
  assert.ok(parsed);
  assert.ok(parsed.expiry >= before + 600 - 60 && parsed.expiry <= after + 599, `expiry ${parsed.expiry}`);
  assert.match(parsed.id, /^[A-Za-z0-9_-]{22}$/);
  assert.ok(verify(body.username, body.password, { secrets: ['cli-test-secret'], maxTtl: 600 }).ok);
});

test('ice and env formats, --user label, ONIONTURN_* env and --config file', async (t) => {
  const dir = tempDir(t);
  const file = secretFile(dir);
  const ice = await runCli(['credentials', '--format', 'ice', '--user', 'alice'], {
    env: { ONIONTURN_SECRET_FILE: file, ONIONTURN_URI: 'turn:127.0.0.1:3478 turn:127.0.0.1:3478?transport=tcp' },
  });
  assert.equal(ice.code, 0, ice.stderr);
  const server = JSON.parse(ice.stdout) as { urls: string[]; username: string; credential: string };
  assert.deepEqual(Object.keys(server), ['urls', 'username', 'credential']);
  assert.deepEqual(server.urls, ['turn:127.0.0.1:3478', 'turn:127.0.0.1:3478?transport=tcp']);
  assert.match(server.username, /^\d+:alice$/);
  assert.ok(verify(server.username, server.credential, { secrets: ['cli-test-secret'] }).ok);

  const env = await runCli(['credentials', '--format', 'env', '--uri', 'turn:127.0.0.1:3478'], { env: { ONIONTURN_SECRET: 'from-env' } });
  assert.equal(env.code, 0, env.stderr);
  assert.equal(env.stderr, '', 'a secret from the environment is not warned about');
  const vars = Object.fromEntries(lines(env.stdout).map((l) => /^([A-Z_]+)=(.*)$/.exec(l)!.slice(1, 3) as [string, string]));
  assert.deepEqual(Object.keys(vars), ['TURN_USERNAME', 'TURN_PASSWORD', 'TURN_TTL', 'TURN_URIS']);
  const unquote = (v: string | undefined): string => (v ?? '').replace(/^'|'$/g, '');
  assert.ok(verify(unquote(vars['TURN_USERNAME']), unquote(vars['TURN_PASSWORD']), { secrets: ['from-env'] }).ok);
  assert.equal(vars['TURN_TTL'], '86400');
  // The env output is valid shell: sourcing it gives back the same values.
  const sourced = await new Promise<string>((resolve, reject) =>
    execFile('sh', ['-c', `${env.stdout}\nprintf '%s|%s' "$TURN_USERNAME" "$TURN_URIS"`], (error, stdout) => (error ? reject(error) : resolve(stdout))),
  );
  assert.equal(sourced, `${unquote(vars['TURN_USERNAME'])}|turn:127.0.0.1:3478`);

  const config = join(dir, 'onionturn.json');
  writeFileSync(config, JSON.stringify({ secretFile: file, ttl: 120, uri: ['turn:127.0.0.1:9'] }));
  const fromConfig = await runCli(['credentials', '--config', config, '--ttl', '300']);
  assert.equal(fromConfig.code, 0, fromConfig.stderr);
  const body = JSON.parse(fromConfig.stdout) as { ttl: number; uris: string[] };
  assert.equal(body.ttl, 300, 'flags override the config file');
  assert.deepEqual(body.uris, ['turn:127.0.0.1:9']);
  writeFileSync(config, JSON.stringify({ secretFile: file, ttll: 120 }));
  const typo = await runCli(['credentials', '--config', config]);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /Unknown argument: ttll/);

  // The same schema from a YAML file; malformed YAML is one line and exit 2.
  const yamlConfig = join(dir, 'onionturn.yaml');
  writeFileSync(yamlConfig, `# onionturn credentials\nsecret-file: ${file}\nttl: 120\nuri:\n  - turn:127.0.0.1:9\n  - turn:127.0.0.1:9?transport=tcp\n`);
  const fromYaml = await runCli(['credentials', '--config', yamlConfig]);
  assert.equal(fromYaml.code, 0, fromYaml.stderr);
  const yamlBody = JSON.parse(fromYaml.stdout) as { ttl: number; uris: string[] };
  assert.equal(yamlBody.ttl, 120);
  assert.deepEqual(yamlBody.uris, ['turn:127.0.0.1:9', 'turn:127.0.0.1:9?transport=tcp']);
  writeFileSync(yamlConfig, `secret-file: ${file}\nttl: [unclosed\n`);
  const badYaml = await runCli(['credentials', '--config', yamlConfig]);
  assert.equal(badYaml.code, 2);
  assert.match(badYaml.stderr, /is not valid YAML/);
  assert.equal(badYaml.stderr.trim().split('\n').length, 1, 'one line');
  writeFileSync(yamlConfig, `- a list\n- not a mapping\n`);
  const listYaml = await runCli(['credentials', '--config', yamlConfig]);
  assert.equal(listYaml.code, 2);
  assert.match(listYaml.stderr, /must hold a YAML mapping/);
});

test('ONIONTURN_* variables meant for other commands are ignored; unknown flags are not', async (t) => {
  const dir = tempDir(t);
  const r = await runCli(['credentials'], { env: { ONIONTURN_SECRET_FILE: secretFile(dir), ONIONTURN_SOCKS: '127.0.0.1:9050', ONIONTURN_RATE_LIMIT: '5' } });
  assert.equal(r.code, 0, r.stderr);
  const bad = await runCli(['credentials', '--secret-file', secretFile(dir), '--socks', '1']);
  assert.equal(bad.code, 2);
});

test('--secret works but warns on one stderr line; the secret never appears on stderr', async () => {
  const r = await runCli(['credentials', '--secret', 'visible-in-ps']);
  assert.equal(r.code, 0);
  assert.equal(lines(r.stderr).length, 1);
  assert.match(r.stderr, /warning: --secret shows the secret/);
  assert.ok(!r.stderr.includes('visible-in-ps'));
  assert.ok(verify(JSON.parse(r.stdout).username, JSON.parse(r.stdout).password, { secrets: ['visible-in-ps'] }).ok);
});

test('a secret file readable by others is used, with a warning', async (t) => {
  const dir = tempDir(t);
  const file = secretFile(dir);
  chmodSync(file, 0o644);
  const r = await runCli(['credentials', '--secret-file', file]);
  assert.equal(r.code, 0);
  assert.match(r.stderr, /mode 0644.*chmod 600/);
});

test('secret and credentials new-secret write a 0600 file, refuse to overwrite without --force', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'turn-secret');
  const made = await runCli(['secret', file]);
  assert.equal(made.code, 0, made.stderr);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const first = readFileSync(file, 'utf8');
  assert.match(first, /^[0-9a-f]{64}\n$/);
  assert.ok(!made.stdout.includes(first.trim()), 'the secret is not printed');
  const again = await runCli(['credentials', 'new-secret', file]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already exists; pass --force/);
  assert.equal(readFileSync(file, 'utf8'), first);
  chmodSync(file, 0o644);
  const forced = await runCli(['credentials', 'new-secret', file, '--force', '--bytes', '48']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(readFileSync(file, 'utf8'), /^[0-9a-f]{96}\n$/);
  assert.equal(statSync(file).mode & 0o777, 0o600, '--force narrows the mode too');
  const noFile = await runCli(['secret']);
  assert.equal(noFile.code, 2);
  // The new file works as --secret-file.
  const cred = await runCli(['credentials', '--secret-file', file]);
  assert.equal(cred.code, 0, cred.stderr);
});

test('npx onionturn runs the same binary', async () => {
  const r = await new Promise<{ code: number | null; stdout: string }>((resolve) =>
    execFile(
      'npx',
      ['--no-install', 'onionturn', 'credentials', '--ttl', '60'],
      { cwd: REPO_ROOT, env: cleanEnv({ ONIONTURN_SECRET: 'npx-secret' }) },
      (error, stdout) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout }),
    ),
  );
  assert.equal(r.code, 0);
  const body = JSON.parse(r.stdout) as { username: string; password: string };
  assert.ok(verify(body.username, body.password, { secrets: ['npx-secret'] }).ok);
});
