// The shim's one source of time, injected: the flow machines, the flow table, the dial pacer and
// the adapters' timers all read it, so tests run them on a ManualClock with no sleeps (and a
// test can step the wall clock alone, as NTP would).

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Wall-clock ms since the epoch: REST credentials only (minted and checked on wall time). */
  now(): number;
  /** Monotonic ms: flows, lifetimes, rates and waits, which a step of the wall clock must not stretch or stop. */
  monotonic(): number;
  /** Calls `fn` once after `ms`. Never keeps the process alive. */
  after(ms: number, fn: () => void): Timer;
  /** Calls `fn` every `ms`. Never keeps the process alive. */
  every(ms: number, fn: () => void): Timer;
}

/** Node's clocks and timers (unref'd). */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  every(ms, fn) {
    const t = setInterval(fn, ms);
    t.unref();
    return { cancel: () => clearInterval(t) };
  },
};

interface ManualTimer {
  due: number;
  readonly period: number;
  readonly fn: () => void;
  readonly seq: number;
  cancelled: boolean;
}

/**
 * A clock that moves only when told (tests). Timers fire in due order, each at its own instant,
 * during advance(); stepWall() moves the wall clock alone (a clock step), no timer fires.
 */
export class ManualClock implements Clock {
  #mono: number;
  #wallOffset: number;
  #seq = 0;
  readonly #timers: ManualTimer[] = [];

  constructor(wallStart = 1_700_000_000_000, monoStart = 1000) {
    this.#mono = monoStart;
    this.#wallOffset = wallStart - monoStart;
  }

  now(): number {
    return this.#mono + this.#wallOffset;
  }

  monotonic(): number {
    return this.#mono;
  }

  after(ms: number, fn: () => void): Timer {
    return this.#add(ms, 0, fn);
  }

  every(ms: number, fn: () => void): Timer {
    return this.#add(ms, Math.max(1, ms), fn);
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer that comes due on the way, in order. */
  advance(ms: number): void {
    const end = this.#mono + ms;
    for (;;) {
      const next = this.#next();
      if (next === undefined || next.due > end) break;
      this.#mono = Math.max(this.#mono, next.due);
      if (next.period > 0) next.due += next.period;
      else next.cancelled = true;
      next.fn();
    }
    this.#mono = end;
    this.#sweep();
  }

  /** Steps the wall clock alone (monotonic time and timers do not move). */
  stepWall(ms: number): void {
    this.#wallOffset += ms;
  }

  #add(ms: number, period: number, fn: () => void): Timer {
    const t: ManualTimer = { due: this.#mono + Math.max(0, ms), period, fn, seq: this.#seq++, cancelled: false };
    this.#timers.push(t);
    return {
      cancel: () => {
        t.cancelled = true;
      },
    };
  }

  #next(): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const t of this.#timers) {
      if (t.cancelled) continue;
      if (best === undefined || t.due < best.due || (t.due === best.due && t.seq < best.seq)) best = t;
    }
    return best;
  }

  #sweep(): void {
    for (let i = this.#timers.length - 1; i >= 0; i--) if ((this.#timers[i] as ManualTimer).cancelled) this.#timers.splice(i, 1);
  }
}
