// What a take-over (TURN mobility) of a TURN app's flow and of a datagram association share: the
// SOCKS credentials of a stream that replaces a lost one (the flow's own isolation with a suffix,
// so Tor (IsolateSOCKSAuth) puts it on another circuit than the one that failed, while nothing in
// it links flows to each other), and how long its Refresh is waited for.
import type { SocksAuth } from './socks5-codec.js';

/**
 * A take-over Refresh unanswered this long is given up for another new stream: it went on a
 * stream that is stalled too (the held one, its circuit through the relay that stalled the lost
 * one), where the transaction's own timeout would wait for tens of seconds. A fresh circuit's
 * round trip is ~0.5 s on an onion path, a few seconds on a congested one. Checked on the flows'
 * tick (1 s): given up 4-5 s after it went.
 */
export const MOVE_ANSWER_TIMEOUT_MS = 5_000;

/** SOCKS5 user/password fields hold at most 255 bytes (RFC 1929). */
const MAX_FIELD = 255;

export function moveAuth(auth: SocksAuth, move: number): SocksAuth {
  const suffix = `~m${move}`;
  const base = auth.password.length + suffix.length > MAX_FIELD ? auth.password.slice(0, MAX_FIELD - suffix.length) : auth.password;
  return { username: auth.username, password: `${base}${suffix}` };
}
