// A network namespace of a test's own: a loopback link with extra addresses on it (a server with a
// public-looking address such as 11.0.0.1), and nothing else, so nothing sent there can leave it.
// Processes run inside with `ip netns exec`, which execs in place: their PID is the tool's own.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool, TOOLS } from './tools.js';

/**
 * Runs a tool to its end and returns its stdout; on failure throws with `what` and the tool's
 * stderr, which is kept out of the caller's own output (a test's), where ip's and tc's complaints
 * landed without saying which call.
 */
export function runTool(bin: string, argv: readonly string[], what: string): string {
  try {
    return execFileSync(bin, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`${what} failed${stderr ? `: ${stderr}` : ''}`, { cause: err });
  }
}

export class NetNamespace {
  #deleted = false;
  readonly #wrappers: string[] = [];

  private constructor(
    readonly name: string,
    readonly ip: string,
  ) {}

  /**
   * Creates `name` (default `onionturn-XXXX`) with lo up and `addresses` on lo. Needs root and
   * iproute2.
   */
  static create(addresses: readonly string[], name = `onionturn-${randomBytes(4).toString('hex')}`): NetNamespace {
    const ip = requireTool(TOOLS.ip);
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      throw new Error('network namespaces need root (ip netns add); run the tests as root, as CI does');
    }
    runTool(ip, ['netns', 'add', name], `ip netns add ${name}`);
    const ns = new NetNamespace(name, ip);
    try {
      ns.run(ip, ['link', 'set', 'lo', 'up']);
      for (const a of addresses) ns.run(ip, ['addr', 'add', a.includes(':') ? `${a}/128` : `${a}/32`, 'dev', 'lo']);
    } catch (err) {
      ns.delete();
      throw err;
    }
    return ns;
  }

  /** argv that runs command inside the namespace (for ProcessGroup.spawn). */
  wrap(command: string, args: readonly string[]): [string, string[]] {
    return [this.ip, ['netns', 'exec', this.name, command, ...args]];
  }

  /** Runs a command inside to its end; throws on failure with the command and its stderr (runTool). */
  run(command: string, args: readonly string[]): string {
    const [bin, argv] = this.wrap(command, args);
    return runTool(bin, argv, `${command} ${args.join(' ')} in namespace ${this.name}`);
  }

  /**
   * An executable script that runs `command` inside the namespace with the arguments it is given:
   * for launchers that take a path (playwright's executablePath). Removed with the namespace.
   */
  wrapperScript(command: string): string {
    const dir = mkdtempSync(join(tmpdir(), 'onionturn-netns-'));
    this.#wrappers.push(dir);
    const path = join(dir, 'run');
    writeFileSync(path, `#!/bin/sh\nexec '${this.ip}' netns exec '${this.name}' '${command}' "$@"\n`);
    chmodSync(path, 0o755);
    return path;
  }

  /** Deletes the namespace (its processes must be stopped first). */
  delete(): void {
    if (this.#deleted) return;
    this.#deleted = true;
    for (const d of this.#wrappers) rmSync(d, { recursive: true, force: true });
    try {
      execFileSync(this.ip, ['netns', 'delete', this.name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}
