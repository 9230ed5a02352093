// Errors are values: decoding hostile input returns one of these, it never throws.

export type DecodeErrorCode = 'truncated' | 'not-stun' | 'bad-length' | 'bad-attribute' | 'too-many-attributes' | 'not-channel-data' | 'bad-channel-number';

export interface DecodeError {
  readonly code: DecodeErrorCode;
  readonly reason: string;
}

export type Result<T, E = DecodeError> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

export function fail(code: DecodeErrorCode, reason: string): { readonly ok: false; readonly error: DecodeError } {
  return { ok: false, error: { code, reason } };
}
