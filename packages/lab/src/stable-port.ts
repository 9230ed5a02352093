// npm start's shim port: the same one every run, so an app configured once keeps working. The
// TURN default port when it is free, else the next of a few fixed ones (still the same each run
// on this machine), else any free one; the choice is said in one line. Pure: which ports are taken
// is an input (the shell asks the kernel).

/** Tried in order: the TURN default, then fixed fallbacks. */
export const STABLE_SHIM_PORTS: readonly number[] = [3478, 3479, 3480];

export interface PortChoice {
  readonly port: number;
  /** True when the first candidate was taken. */
  readonly fallback: boolean;
  /** What to tell the user. */
  readonly line: string;
}

/** The first candidate not in `taken`; `anyFree` (a port the OS found) when all are taken. */
export function chooseStablePort(candidates: readonly number[], taken: ReadonlySet<number>, anyFree: () => number): PortChoice {
  const first = candidates[0];
  const free = candidates.find((p) => !taken.has(p));
  if (free !== undefined && free === first) return { port: free, fallback: false, line: `shim port ${free} (the same every run)` };
  const busyPorts = candidates.filter((p) => taken.has(p));
  const busy = busyPorts.join(', ');
  const stay = busyPorts.length === 1 ? 'stays' : 'stay';
  if (free !== undefined)
    return { port: free, fallback: true, line: `shim port ${first ?? '?'} is taken, using ${free} (the same every run while ${busy} ${stay} taken)` };
  const port = anyFree();
  return { port, fallback: true, line: `shim ports ${busy} are all taken, using ${port} (chosen for this run only: apps need it changed next time)` };
}
