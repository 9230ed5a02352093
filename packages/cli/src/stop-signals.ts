// SIGINT/SIGTERM/SIGHUP for a long-running command, watched from its first moment: a Ctrl-C while the
// embedded tor is still bootstrapping must stop that tor and remove its data directory, which
// Node's default action (die at once, no 'exit' handlers) would not. A second signal means
// "now": process.exit runs the 'exit' handlers (managed-tor's SIGKILLs its child and cleans up).
// SIGHUP (the terminal closed, an ssh session dropped) stops too: Node's default would kill the
// process without 'exit' handlers, leaving tor to die later and its data directory behind.

const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export interface StopSignals {
  /** Aborted at the first SIGINT, SIGTERM or SIGHUP; its reason is the signal's name. */
  readonly signal: AbortSignal;
  /** Stops watching (the command is done). */
  dispose(): void;
}

export function watchStopSignals(onSignal: (name: NodeJS.Signals, first: boolean) => void, exitCodeOnSecond = 1): StopSignals {
  const controller = new AbortController();
  const handler = (name: NodeJS.Signals): void => {
    const first = !controller.signal.aborted;
    onSignal(name, first);
    if (first) controller.abort(name);
    else process.exit(exitCodeOnSecond);
  };
  for (const name of STOP_SIGNALS) process.on(name, handler);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const name of STOP_SIGNALS) process.off(name, handler);
    },
  };
}
