// The server's clock for lifetimes, nonces, rates and schedules: one that a step of the wall clock
// (NTP correcting drift, a VM resumed) cannot move, so calls neither end early nor outlive their
// lifetime. Its values lie in the epoch's range, so they read like Date.now() in logs and tests.
// Only REST credentials use the wall clock (CoreOptions.wallNow).

/** Milliseconds since an origin near the epoch; never steps. */
export function monotonicNow(): number {
  return performance.timeOrigin + performance.now();
}
