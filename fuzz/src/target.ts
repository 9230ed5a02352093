// What a fuzz target is: seeds, a mutator, and a run that throws when a check fails.
import type { Rng } from './rng.js';

export interface Target {
  readonly name: string;
  /** Share of an --execs or --seconds budget relative to the others (default 1): slow targets take less. */
  readonly weight?: number;
  /** Largest input the mutator produces. */
  readonly maxSize: number;
  /** Prepares what run() needs (imports, fixed state); called once. */
  init?(): Promise<void>;
  /** CPU budget in microseconds for an input of `size` bytes: linear in size, with a wide margin. */
  budgetUs(size: number): number;
  /** Inputs made in code (RFC vectors, typical messages); the corpus files come on top. */
  seeds(): Buffer[];
  mutate(input: Buffer, rng: Rng, corpus: readonly Buffer[]): Buffer;
  /** Smaller variants of an input that keep its structure (for minimising findings). */
  shrink?(input: Buffer): Buffer[];
  /**
   * Runs one input. Throws (a FuzzCheckError or anything escaping the code under test) when a
   * check fails; returns a short description of what the input did, used as feedback: an input
   * that does something new joins the working corpus.
   */
  run(input: Buffer): string;
}

/** A failed check (as opposed to an exception escaping the code under test). */
export class FuzzCheckError extends Error {
  override readonly name = 'FuzzCheckError';
}

export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new FuzzCheckError(message);
}
