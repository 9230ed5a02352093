// Child processes started by tests, tracked by PID so that exactly those (and nothing else)
// are stopped afterwards, also when a test fails.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';

export interface Started {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything the process wrote so far (stdout + stderr), capped, for error messages. */
  output(): string;
}

const OUTPUT_CAP = 64 * 1024;

export class ProcessGroup {
  readonly #started: Started[] = [];
  readonly #pidFiles: { name: string; pid: number }[] = [];

  /** Spawns a process whose lifetime belongs to this group. */
  spawn(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): Started {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
    let out = '';
    const keep = (chunk: Buffer): void => {
      out += chunk.toString('utf8');
      if (out.length > OUTPUT_CAP) out = out.slice(-OUTPUT_CAP);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const started: Started = { name, child, pid: child.pid, output: () => out };
    this.#started.push(started);
    return started;
  }

  /** Adopts a daemonized process known only by PID (e.g. tor with RunAsDaemon and PidFile). */
  adopt(name: string, pid: number): void {
    this.#pidFiles.push({ name, pid });
  }

  get pids(): number[] {
    return [...this.#started.map((s) => s.pid), ...this.#pidFiles.map((p) => p.pid)];
  }

  /** Stops every process this group started: SIGTERM, then SIGKILL after graceMs. */
  async stopAll(graceMs = 3000): Promise<void> {
    const children = this.#started.splice(0);
    const adopted = this.#pidFiles.splice(0);
    await Promise.all([
      ...children.map(async (s) => {
        if (s.child.exitCode !== null || s.child.signalCode !== null) return;
        const exited = once(s.child, 'exit');
        s.child.kill('SIGTERM');
        const timer = setTimeout(() => s.child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }),
      ...adopted.map(async ({ pid }) => {
        if (!alive(pid)) return;
        process.kill(pid, 'SIGTERM');
        const deadline = Date.now() + graceMs;
        while (alive(pid) && Date.now() < deadline) await sleep(50);
        if (alive(pid)) process.kill(pid, 'SIGKILL');
      }),
    ]);
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when predicate() is truthy; rejects with `what` after timeoutMs. */
export async function waitFor<T>(what: string, predicate: () => T | Promise<T>, timeoutMs: number, stepMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}
