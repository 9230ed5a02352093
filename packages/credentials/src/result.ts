// Errors are values: every fallible function here returns a Result instead of throwing, so a
// server can map each failure code to a STUN error (401, 400) without try/catch on a hot path.

export type Result<T, E> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

export function err<E>(error: E): { readonly ok: false; readonly error: E } {
  return { ok: false, error };
}
