// The SOCKS credentials of a stream that replaces a lost one (TURN mobility): the flow's own
// isolation with a suffix, so Tor (IsolateSOCKSAuth) puts it on another circuit than the one
// that failed, while nothing in it links flows to each other.
import type { SocksAuth } from './socks5-codec.js';

/** SOCKS5 user/password fields hold at most 255 bytes (RFC 1929). */
const MAX_FIELD = 255;

export function moveAuth(auth: SocksAuth, move: number): SocksAuth {
  const suffix = `~m${move}`;
  const base = auth.password.length + suffix.length > MAX_FIELD ? auth.password.slice(0, MAX_FIELD - suffix.length) : auth.password;
  return { username: auth.username, password: `${base}${suffix}` };
}
