// What the TURN client session tests share: a credential, a realm and a peer, and the test's side
// of the conversation (the STUN the session sent, and answers signed like a server's).
import assert from 'node:assert/strict';
import {
  AttributeType,
  ErrorCode,
  MessageBuilder,
  MessageClass,
  decodeMessage,
  errorCodeValue,
  longTermKey,
  type StunMessage,
  type TransportAddress,
} from '@onionturn/protocol';
import type { SessionAction } from '../src/turn-client-session.js';

export const T0 = 1_700_000_000_000;
export const CRED = { username: '1700086400:abc', password: 'upstream-pass', expiresAt: T0 + 86_400_000 };
export const REALM = 'turn.example';
export const KEY = longTermKey(CRED.username, REALM, CRED.password);
export const PEER: TransportAddress = { family: 'IPv4', address: '127.0.0.1', port: 5353 };

/** The STUN messages among the session's actions (ChannelData left out). */
export function sent(actions: readonly SessionAction[]): StunMessage[] {
  const out: StunMessage[] = [];
  for (const a of actions) {
    if (a.kind !== 'send-upstream' || (a.data[0] as number) >= 0x40) continue;
    const r = decodeMessage(a.data);
    assert.ok(r.ok, 'the session sends well-formed STUN');
    out.push(r.value);
  }
  return out;
}

/** An answer to `req`, signed with `key` (null: unsigned, as a 401 is). */
export function answer(req: StunMessage, cls: MessageClass, attrs: (b: MessageBuilder) => void = () => {}, key: Buffer | null = KEY): Buffer {
  const b = new MessageBuilder(req.method, cls, Buffer.from(req.transactionId));
  attrs(b);
  return b.build(key ? { integrityKey: key } : {});
}

/** The server's challenge: 401 (or `code`) with the realm and a nonce. */
export const challenge = (req: StunMessage, code: number = ErrorCode.Unauthorized, nonce = 'nonce-1'): Buffer =>
  answer(
    req,
    MessageClass.ErrorResponse,
    (b) =>
      b
        .add(AttributeType.ErrorCode, errorCodeValue(code))
        .add(AttributeType.Realm, { kind: 'text', text: REALM })
        .add(AttributeType.Nonce, { kind: 'text', text: nonce }),
    null,
  );
