// Runs the real `onionturn` binary (packages/cli/bin/onionturn.js, what `npx onionturn` starts) for
// tests, by path: the cli's own tests and the server's interop tests share these.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onionturnBin, waitFor, type ProcessGroup, type Started } from '@onionturn/lab';

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The test runner's environment without ONIONTURN_* variables, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ONIONTURN_')) env[k] = v;
  return { ...env, ...extra };
}

export function runCli(args: readonly string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [onionturnBin(), ...args],
      { env: cleanEnv(options.env), cwd: options.cwd ?? process.cwd(), timeout: 20_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A temporary directory removed after the test. */
export function testTempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'onionturn-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Served {
  readonly process: Started;
  readonly base: string;
}

/** Starts `onionturn credentials serve --listen 127.0.0.1:0 ...` and reads the bound address from its JSON log. */
export async function startServe(group: ProcessGroup, args: readonly string[], env: Record<string, string> = {}): Promise<Served> {
  const started = group.spawn('onionturn credentials serve', process.execPath, [onionturnBin(), 'credentials', 'serve', '--listen', '127.0.0.1:0', ...args], {
    env: cleanEnv(env),
  });
  const listen = await waitFor(
    'the credential endpoint to log its address',
    () => {
      if (started.child.exitCode !== null) throw new Error(`serve exited ${started.child.exitCode}: ${started.output()}`);
      return /"listen":"(127\.0\.0\.1:\d+)"/.exec(started.output())?.[1];
    },
    10_000,
    50,
  );
  return { process: started, base: `http://${listen}` };
}

/**
 * The flags every test shim starts with: an app listener on a free loopback port and one plain-TCP
 * server on loopback, reached through the SOCKS port given. `notTor` adds --allow-non-tor-socks for
 * SOCKS servers that are not tor (microsocks, the recorders); a real tor needs no flag.
 */
export function shimArgs(o: { readonly serverPort: number; readonly socks: string | number; readonly notTor?: boolean }): string[] {
  const socks = typeof o.socks === 'number' ? `127.0.0.1:${o.socks}` : o.socks;
  return [
    '--listen',
    '127.0.0.1:0',
    '--server',
    `tcp://127.0.0.1:${o.serverPort}`,
    '--allow-plaintext-upstream',
    ...(o.notTor ? ['--allow-non-tor-socks'] : []),
    '--socks',
    socks,
  ];
}

/** Spawns `onionturn client ARGS` in the group, with the test runner's environment cleaned (cleanEnv) plus `env`. */
export function spawnClient(group: ProcessGroup, args: readonly string[], env: Record<string, string> = {}, name = 'onionturn client'): Started {
  return group.spawn(name, process.execPath, [onionturnBin(), 'client', ...args], { env: cleanEnv(env) });
}

/** The port of a started `onionturn client`, read from the iceServers it prints on stdout. */
export async function shimPort(cli: Started): Promise<number> {
  let stdout = '';
  cli.child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  return Number(
    await waitFor(
      'iceServers on stdout',
      () => {
        if (cli.child.exitCode !== null) throw new Error(`client exited: ${cli.output()}`);
        return /"turn:127\.0\.0\.1:(\d+)\?transport=udp"/.exec(stdout)?.[1];
      },
      10_000,
      50,
    ),
  );
}
