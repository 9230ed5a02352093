// The server's 401, fetched ahead on a ready stream (issue 14: setup). A TURN client's first
// Allocate carries no credentials: the 401 brings realm and nonce (RFC 8656 §7.2, RFC 8489
// §9.2), which costs a round trip over Tor before anything is allocated. While a stream waits
// ready, the shim asks for that 401 itself, and the flow that takes the stream answers the app's
// first Allocate with it at once; the app's signed Allocate is then the first request the flow
// sends upstream. The server binds its nonce to the connection (its 5-tuple as the server sees
// it) and the flow takes that very connection, so the nonce is good for the app; one that went
// stale meanwhile gets the server's 438 and the app signs again, as it would anyway.
// Pure: bytes in, bytes out.
import {
  AttributeType,
  ErrorCode,
  HEADER_LENGTH,
  MessageBuilder,
  MessageClass,
  Method,
  decodeMessage,
  getAttribute,
  readErrorCode,
  readText,
  withoutDelayFeedback,
  type StunMessage,
} from '@onionturn/protocol';

/** An Allocate for UDP with no credentials: what every TURN client sends first. */
export function challengeProbe(transactionId: Buffer): Buffer {
  return new MessageBuilder(Method.Allocate, MessageClass.Request, transactionId)
    .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
    .build();
}

/** The probe's answer (transaction `transactionId`) if it is a 401 with realm and nonce; else undefined. */
export function readChallenge(frame: Buffer, transactionId: Buffer): StunMessage | undefined {
  const r = decodeMessage(frame);
  if (!r.ok) return undefined;
  const m = r.value;
  if (m.method !== Method.Allocate || m.messageClass !== MessageClass.ErrorResponse || !m.transactionId.equals(transactionId)) return undefined;
  if (readErrorCode(m)?.code !== ErrorCode.Unauthorized) return undefined;
  return readText(m, AttributeType.Realm) !== undefined && readText(m, AttributeType.Nonce) !== undefined ? m : undefined;
}

/** The app's request (a whole STUN message), decoded when it is an Allocate with no credentials at all. */
export function firstAllocate(request: Buffer): StunMessage | undefined {
  if (request.length < HEADER_LENGTH) return undefined;
  // The shim's delay-extension offer may trail it (pass-through): not the app's.
  const r = decodeMessage(withoutDelayFeedback(request));
  if (!r.ok) return undefined;
  const m = r.value;
  if (m.method !== Method.Allocate || m.messageClass !== MessageClass.Request || m.classic) return undefined;
  if (m.integrityOffset >= 0 || m.integritySha256Offset >= 0) return undefined;
  return getAttribute(m, AttributeType.Username) === undefined && getAttribute(m, AttributeType.Userhash) === undefined ? m : undefined;
}

/**
 * The challenge as the server would have sent it to `request`: the request's transaction id,
 * the challenge's attributes in order, and a FINGERPRINT when the request had one (the server
 * answers in kind).
 */
export function challengeAnswer(challenge: StunMessage, request: StunMessage): Buffer {
  const b = new MessageBuilder(Method.Allocate, MessageClass.ErrorResponse, request.transactionId);
  for (const a of challenge.attributes) if (a.type !== AttributeType.Fingerprint) b.addRaw(a.type, a.value);
  return b.build({ fingerprint: request.fingerprintOffset >= 0 });
}
