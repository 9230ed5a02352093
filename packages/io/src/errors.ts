// Errors as they may be shown: Node's messages for socket errors name the remote ip:port (a
// client's or a peer's address), so logs and one-line errors carry the code only.

/** ECONNREFUSED, ENOENT, ERR_TLS_CERT_ALTNAME_INVALID...; the error's name when it has no code. */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : 'non-error thrown';
}

/**
 * For errors about the user's own things (a file, a listen address, a certificate): the code, or
 * the message when there is none (it names nobody else, and a bare "Error" would help no one).
 */
export function errorText(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.message : String(error);
}
