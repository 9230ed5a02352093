// The randomness a credential needs, behind a small interface so tests can make runs
// reproducible; production uses the operating system's CSPRNG through node:crypto.
import { randomBytes, randomInt } from 'node:crypto';

export interface RandomSource {
  /** `count` uniformly random bytes. */
  bytes(count: number): Uint8Array;
  /** A uniformly random integer in [min, maxExclusive). */
  int(min: number, maxExclusive: number): number;
}

export const cryptoRandom: RandomSource = {
  bytes: (count) => randomBytes(count),
  int: (min, maxExclusive) => randomInt(min, maxExclusive),
};
