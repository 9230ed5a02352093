// Local-credential mode: what the shim does with a STUN request from a UDP source that has no
// flow yet, sans-IO. A flow holds one of a bounded number of slots for the allocation lifetime,
// and any web page can make a browser send TURN requests to 127.0.0.1 from fresh source ports
// with made-up credentials. So a flow is made only for an Allocate signed with the local
// credentials and a nonce this shim gave that source; everything else is answered from no state:
// the 401 challenge (its nonce is stateless, see app-auth.ts), 438 and 400, wrong passwords,
// Bindings (signed or not), and the 437 upstream would give for other requests.
import { ErrorCode, Method, decodeMessage, type TransportAddress } from '@onionturn/protocol';
import type { AppAuthenticator } from './app-auth.js';
import { answerBinding, answerFlowlessBinding } from './binding-answer.js';

/** Why a request was answered without a flow (the shell counts each). */
export type FlowlessReason = 'binding' | 'challenge' | 'wrong-credentials' | 'no-allocation';

export type FlowlessVerdict =
  /** An authenticated Allocate: make the flow and hand it this request. */
  | { readonly kind: 'open' }
  | { readonly kind: 'answer'; readonly data: Buffer; readonly reason: FlowlessReason }
  /** Not STUN after all (malformed, a wrong FINGERPRINT) or an app address the shell could not tell. */
  | { readonly kind: 'drop' };

const OPEN: FlowlessVerdict = { kind: 'open' };
const DROP: FlowlessVerdict = { kind: 'drop' };

/** `datagram` is a STUN request (the caller checked isStunRequest); `app` its source. */
export function answerFlowless(datagram: Buffer, app: TransportAddress | undefined, auth: AppAuthenticator, now: number): FlowlessVerdict {
  const plain = answerFlowlessBinding(datagram, app);
  if (plain.kind === 'answer') return { kind: 'answer', data: plain.data, reason: 'binding' };
  if (plain.kind === 'drop') return DROP;
  const r = decodeMessage(datagram);
  if (!r.ok) return DROP;
  const msg = r.value;
  const check = auth.check(msg, app, now);
  if (check.kind === 'refused') return { kind: 'answer', data: check.data, reason: check.wrongCredentials ? 'wrong-credentials' : 'challenge' };
  if (msg.method === Method.Allocate) return OPEN;
  if (msg.method === Method.Binding) {
    if (app === undefined) return DROP;
    const data = answerBinding(msg, app, auth.signature(msg.integrityOffset >= 0, msg.integritySha256Offset >= 0, false));
    return data ? { kind: 'answer', data, reason: 'binding' } : DROP;
  }
  // Refresh, CreatePermission, ChannelBind (or any other method) without a flow: a new Tor stream
  // is a new 5-tuple, so upstream has no allocation for it and would answer 437. Said here, it
  // costs no circuit and no flow slot.
  return { kind: 'answer', data: auth.error(msg, ErrorCode.AllocationMismatch, undefined, true), reason: 'no-allocation' };
}
