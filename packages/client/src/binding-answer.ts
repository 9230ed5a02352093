// Local-credential mode answers STUN Binding requests itself, sans-IO. Binding needs no
// credentials and the shim is the app's TURN server, so its answer is the app's source as the
// shim sees it (a loopback address: nothing the app does not know). Forwarding it would open a
// Tor circuit and tell the server side an app here is probing, for an answer that would only
// name the Tor exit. No SOFTWARE, as everywhere.
import {
  AttributeType,
  ErrorCode,
  HEADER_LENGTH,
  MessageBuilder,
  MessageClass,
  Method,
  decodeMessage,
  errorCodeValue,
  methodOf,
  parseIp,
  verifyFingerprint,
  type StunMessage,
  type TransportAddress,
} from '@onionturn/protocol';

/** The app's address for XOR-MAPPED-ADDRESS; an IPv4-mapped IPv6 source is the IPv4 app it is. */
export function appTransportAddress(address: string | undefined, port: number | undefined): TransportAddress | undefined {
  if (address === undefined || port === undefined) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const ip = mapped ? (mapped[1] as string) : address;
  const bytes = parseIp(ip);
  if (!bytes) return undefined;
  return { family: bytes.length === 4 ? 'IPv4' : 'IPv6', address: ip, port };
}

/** How an authenticated Binding's answer is signed: as the app signed its request. */
export interface BindingSignature {
  readonly integrityKey: Buffer;
  readonly sha1: boolean;
  readonly sha256: boolean;
}

/**
 * The answer to a Binding request: success with XOR-MAPPED-ADDRESS, or 420 for unknown
 * comprehension-required attributes (RFC 8489 §6.3.1), with FINGERPRINT when the request had one.
 * undefined when the request must be dropped: a wrong FINGERPRINT means it is not STUN (§7.3).
 */
export function answerBinding(request: StunMessage, app: TransportAddress, sign?: BindingSignature): Buffer | undefined {
  const fingerprint = request.fingerprintOffset >= 0;
  if (fingerprint && verifyFingerprint(request) !== 'ok') return undefined;
  if (request.unknownRequired.length > 0) {
    return new MessageBuilder(Method.Binding, MessageClass.ErrorResponse, request.transactionId)
      .add(AttributeType.ErrorCode, errorCodeValue(ErrorCode.UnknownAttribute))
      .add(AttributeType.UnknownAttributes, { kind: 'unknown-attributes', types: request.unknownRequired })
      .build({ fingerprint });
  }
  return new MessageBuilder(Method.Binding, MessageClass.SuccessResponse, request.transactionId)
    .add(AttributeType.XorMappedAddress, { kind: 'address', address: app })
    .build(sign ? { ...sign, fingerprint } : { fingerprint });
}

/** What the shim does with a datagram from a source that has no flow yet, in local mode. */
export type FlowlessBinding = { readonly kind: 'answer'; readonly data: Buffer } | { readonly kind: 'drop' } | { readonly kind: 'other' };

const OTHER: FlowlessBinding = { kind: 'other' };
const DROP: FlowlessBinding = { kind: 'drop' };

/**
 * An unauthenticated Binding request (a STUN request the caller has checked) is answered
 * without making a flow, so Binding floods from many source ports (any web page can make a
 * browser send them) fill no flow slots. Anything else, including a Binding with
 * MESSAGE-INTEGRITY, is 'other': a flow and its resigner handle it.
 */
export function answerFlowlessBinding(datagram: Buffer, app: TransportAddress | undefined): FlowlessBinding {
  if (datagram.length < HEADER_LENGTH || methodOf(datagram.readUInt16BE(0)) !== Method.Binding) return OTHER;
  const r = decodeMessage(datagram);
  if (!r.ok || app === undefined) return DROP;
  const msg = r.value;
  if (msg.integrityOffset >= 0 || msg.integritySha256Offset >= 0) return OTHER;
  const data = answerBinding(msg, app);
  return data ? { kind: 'answer', data } : DROP;
}
