// The server's side of the shim<->server delay extension (issue 14, deliverable 3; the state is
// @onionturn/io's DelayFeedbackSession, the same the shim runs). A client offers DELAY-FEEDBACK in
// an Allocate (or the Refresh that takes an allocation over on a new stream); a connection whose
// shell can run it (TCP/TLS with a time bound, the extension not turned off) gets a session and
// the success response echoes the attribute. A plain TURN client never offers it and never sees
// anything of it.
import {
  DELAY_FEEDBACK_ATTRIBUTE,
  classifyPayload,
  droppableOnArrival,
  decodeDelayFeedback,
  getAttribute,
  hasDelayFeedbackOffer,
  newFrameClass,
  withDelayFeedbackOffer,
  type StunMessage,
} from '@onionturn/protocol';
import type { Client } from './allocation.js';

/**
 * `response`, the success of `msg` about to be sent: when `msg` offered the extension (a trailer:
 * see @onionturn/protocol's delay-feedback.ts) and the connection can run it, negotiates it and
 * returns the response with the echo; else the response as it is.
 */
export function echoDelayFeedback(client: Client, msg: StunMessage, response: Buffer): Buffer {
  if (!hasDelayFeedbackOffer(msg.raw)) return response;
  const session = client.link.negotiateDelayFeedback?.();
  if (session === undefined) return response;
  client.delayFeedback = session;
  return withDelayFeedbackOffer(response);
}

/** A Binding indication from a negotiated client: its report, if it carries one this version reads. */
export function onDelayReport(client: Client, msg: StunMessage): void {
  const attr = getAttribute(msg, DELAY_FEEDBACK_ATTRIBUTE);
  const report = attr === undefined ? undefined : decodeDelayFeedback(attr.value);
  if (report !== undefined) client.link.delayReport?.(report);
}

const scratch = newFrameClass();

/** Relayed data at `buf[at, at + len)` that may be dropped when it arrives stale (see droppableOnArrival). */
export function droppablePayload(buf: Buffer, at: number, len: number): boolean {
  classifyPayload(buf, at, len, scratch);
  return droppableOnArrival(scratch);
}
