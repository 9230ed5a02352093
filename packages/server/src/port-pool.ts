// Relay ports: chosen at random from a range (so port numbers do not count allocations or link
// them), and a released port rests in quarantine before reuse so a late packet for the old
// allocation never reaches a new one. Availability comes first: when no free port is left, the
// longest-resting quarantined ports are reused early, so allocating and releasing in a loop (one
// credential can do it thousands of times a minute) cannot lock everyone out for the quarantine.
import { cryptoRandom, type RandomSource } from '@onionturn/credentials';

export class PortPool {
  readonly #free: number[] = [];
  /** Position of each free port in #free, for taking a given port (the odd half of a pair). */
  readonly #index = new Map<number, number>();
  /** Released ports in release order with the time they may be reused. */
  readonly #quarantine: { port: number; until: number }[] = [];
  #qHead = 0;
  #early = 0;
  readonly #quarantineMs: number;
  readonly #random: RandomSource;
  readonly #min: number;
  readonly #max: number;
  /**
   * A port outside this pool's range is given back (a worker's allocation on a port reserved by
   * another worker): it goes home through this, never into this pool.
   */
  foreign: ((port: number) => void) | undefined;

  /** `random`: the operating system's CSPRNG unless a test makes runs reproducible. */
  constructor(min: number, max: number, quarantineMs: number, random: RandomSource = cryptoRandom) {
    this.#random = random;
    if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 1 && max <= 65535 && min <= max)) {
      throw new RangeError(`bad relay port range ${min}-${max}`);
    }
    this.#min = min;
    this.#max = max;
    for (let p = min; p <= max; p++) this.#push(p);
    this.#quarantineMs = quarantineMs;
  }

  get available(): number {
    return this.#free.length;
  }

  /** Ports handed out before their quarantine ended because none was free. */
  get earlyReuses(): number {
    return this.#early;
  }

  /** A random free port (even when `even`), or undefined when every port is in use. */
  take(nowMs: number, even = false): number | undefined {
    this.#release(nowMs);
    return this.#take(even) ?? (this.#releaseEarly(even ? 64 : 1) ? this.#take(even) : undefined);
  }

  /** A random even port whose successor is free too (RTP/RTCP pairs, EVEN-PORT with R set). */
  takePair(nowMs: number): [number, number] | undefined {
    this.#release(nowMs);
    return this.#takePair() ?? (this.#releaseEarly(256) ? this.#takePair() : undefined);
  }

  #take(even: boolean): number | undefined {
    const free = this.#free;
    if (free.length === 0) return undefined;
    for (let attempt = 0; attempt < 64; attempt++) {
      const port = free[this.#random.int(0, free.length)] as number;
      if (even && port % 2 !== 0) continue;
      this.#remove(port);
      return port;
    }
    return undefined;
  }

  #takePair(): [number, number] | undefined {
    const free = this.#free;
    for (let attempt = 0; attempt < 128 && free.length > 1; attempt++) {
      const port = free[this.#random.int(0, free.length)] as number;
      if (port % 2 !== 0 || !this.#index.has(port + 1)) continue;
      this.#remove(port);
      this.#remove(port + 1);
      return [port, port + 1];
    }
    return undefined;
  }

  /** Frees up to `n` of the longest-quarantined ports now; false when none was quarantined. */
  #releaseEarly(n: number): boolean {
    const q = this.#quarantine;
    const start = this.#qHead;
    while (this.#qHead < q.length && this.#qHead - start < n) {
      this.#push((q[this.#qHead] as { port: number }).port);
      this.#qHead++;
    }
    this.#early += this.#qHead - start;
    return this.#qHead > start;
  }

  #push(port: number): void {
    this.#index.set(port, this.#free.length);
    this.#free.push(port);
  }

  #remove(port: number): void {
    const free = this.#free;
    const i = this.#index.get(port);
    if (i === undefined) return;
    const last = free.pop() as number;
    this.#index.delete(port);
    if (last !== port) {
      free[i] = last;
      this.#index.set(last, i);
    }
  }

  /** Gives a port back; it is reusable after the quarantine. */
  give(port: number, nowMs: number): void {
    if (port < this.#min || port > this.#max) return this.foreign?.(port);
    this.#quarantine.push({ port, until: nowMs + this.#quarantineMs });
  }

  #release(nowMs: number): void {
    const q = this.#quarantine;
    while (this.#qHead < q.length && (q[this.#qHead] as { until: number }).until <= nowMs) {
      this.#push((q[this.#qHead] as { port: number }).port);
      this.#qHead++;
    }
    if (this.#qHead > 1024 && this.#qHead * 2 > q.length) {
      q.splice(0, this.#qHead);
      this.#qHead = 0;
    }
  }
}
