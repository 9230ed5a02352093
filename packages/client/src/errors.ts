// Errors are values with a code and a reason (STYLE.md); the shell turns them into log lines.

export type UpstreamErrorCode =
  'socks-unreachable' | 'socks-protocol' | 'socks-auth' | 'socks-reply' | 'timeout' | 'tls' | 'pin-mismatch' | 'credentials' | 'closed';

export interface UpstreamError {
  readonly code: UpstreamErrorCode;
  readonly reason: string;
  /** The SOCKS reply code when code is 'socks-reply'. */
  readonly reply?: number;
}

export function upstreamError(code: UpstreamErrorCode, reason: string, reply?: number): UpstreamError {
  return reply === undefined ? { code, reason } : { code, reason, reply };
}
