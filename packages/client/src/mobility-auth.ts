// What a take-over (TURN mobility) of a TURN app's flow and of a datagram association share: the
// SOCKS credentials of a stream that replaces a lost one (the flow's own isolation with a suffix,
// so Tor (IsolateSOCKSAuth) puts it on another circuit than the one that failed, while nothing in
// it links flows to each other), and how long its Refresh is waited for.
import type { SocksAuth } from './socks5-codec.js';

/**
 * A take-over Refresh unanswered this long (nothing read on its stream) is given up for another
 * new stream: it went on a stream that is stalled too (the held one, its circuit through the relay
 * that stalled the lost one), where the transaction's own timeout would wait for tens of seconds.
 * A fresh circuit's round trip is ~0.5 s on an onion path, a few seconds on a congested one.
 * Checked on the flows' tick (1 s): given up 5-6 s after the Refresh went.
 */
export const MOVE_ANSWER_TIMEOUT_MS = 5_000;
/** Why a take-over's stream is given up when MOVE_ANSWER_TIMEOUT_MS passed. */
export const MOVE_UNANSWERED = `the take-over Refresh went unanswered for ${MOVE_ANSWER_TIMEOUT_MS / 1000} s`;
/**
 * New streams one take-over may try per lost one: the first is often the held stream, which a
 * failure of a relay every circuit of the client crosses (its guard; in a small network any)
 * took down, or stalled, with the lost stream, unnoticed until it is used; the second is another
 * (a held stream dialed after the loss, or a fresh dial). One more loss ends the flow.
 */
export const MOVE_ATTEMPTS = 2;

/** SOCKS5 user/password fields hold at most 255 bytes (RFC 1929). */
const MAX_FIELD = 255;

export function moveAuth(auth: SocksAuth, move: number): SocksAuth {
  const suffix = `~m${move}`;
  const base = auth.password.length + suffix.length > MAX_FIELD ? auth.password.slice(0, MAX_FIELD - suffix.length) : auth.password;
  return { username: auth.username, password: `${base}${suffix}` };
}
