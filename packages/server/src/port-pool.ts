// Relay ports: chosen at random from a range (so port numbers do not count allocations or link
// them), and a released port rests in quarantine before reuse so a late packet for the old
// allocation never reaches a new one.
import { randomInt } from 'node:crypto';

export class PortPool {
  readonly #free: number[] = [];
  /** Released ports in release order with the time they may be reused. */
  readonly #quarantine: { port: number; until: number }[] = [];
  #qHead = 0;
  readonly #quarantineMs: number;

  constructor(min: number, max: number, quarantineMs: number) {
    if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 1 && max <= 65535 && min <= max)) {
      throw new RangeError(`bad relay port range ${min}-${max}`);
    }
    for (let p = min; p <= max; p++) this.#free.push(p);
    this.#quarantineMs = quarantineMs;
  }

  get available(): number {
    return this.#free.length;
  }

  /** A random free port (even when `even`), or undefined when none is left. */
  take(nowMs: number, even = false): number | undefined {
    this.#release(nowMs);
    const free = this.#free;
    if (free.length === 0) return undefined;
    for (let attempt = 0; attempt < 64; attempt++) {
      const i = randomInt(free.length);
      const port = free[i] as number;
      if (even && port % 2 !== 0) continue;
      free[i] = free[free.length - 1] as number;
      free.pop();
      return port;
    }
    return undefined;
  }

  /** Gives a port back; it is reusable after the quarantine. */
  give(port: number, nowMs: number): void {
    this.#quarantine.push({ port, until: nowMs + this.#quarantineMs });
  }

  /** A port that could not be bound (in use by someone else): retried only after the quarantine. */
  skip(port: number, nowMs: number): void {
    this.give(port, nowMs);
  }

  #release(nowMs: number): void {
    const q = this.#quarantine;
    while (this.#qHead < q.length && (q[this.#qHead] as { until: number }).until <= nowMs) {
      this.#free.push((q[this.#qHead] as { port: number }).port);
      this.#qHead++;
    }
    if (this.#qHead > 1024 && this.#qHead * 2 > q.length) {
      q.splice(0, this.#qHead);
      this.#qHead = 0;
    }
  }
}
