// @onionturn/protocol: a pure STUN (RFC 8489) / TURN (RFC 8656) codec, and the datagram framing of datagram onion services. No sockets, no timers,
// no logging; decoding returns errors as values and never throws on hostile input.
export * from './constants.js';
export { type DecodeError, type DecodeErrorCode, type Result } from './result.js';
export { parseIp, parseIPv4, parseIPv6, formatIp, formatIPv4, formatIPv6 } from './ip-address.js';
export { readAddress, writeAddress, type IpFamily, type TransportAddress } from './address.js';
export { encodeMessageType, methodOf, classOf } from './message-type.js';
export { MAX_ATTRIBUTES, decodeMessage, getAttribute, headerOf, type RawAttribute, type StunMessage } from './message.js';
export { WireKind, wireKindOf } from './first-byte.js';
export { NONCE_COOKIE, NO_NONCE_COOKIE, NonceIssuer, type NonceCheck } from './nonce-issuer.js';
export {
  ATTRIBUTE_KINDS,
  decodeAttributeValue,
  encodeAttributeValue,
  errorCodeValue,
  type AttributeKind,
  type AttributeValue,
  type PasswordAlgorithmValue,
} from './attributes.js';
export { decodeAttribute, readAttribute, readAttributes, readText, readAddressAttribute, readErrorCode, readUint32 } from './read.js';
export {
  computeFingerprint,
  computeHmac,
  longTermKey,
  saslprep,
  userhash,
  verifyFingerprint,
  verifyIntegrity,
  verifyMessageIntegrity,
  verifyMessageIntegritySha256,
  type IntegrityCheck,
} from './integrity.js';
export { crc32 } from './crc32.js';
export { MessageBuilder, newTransactionId, type BuildOptions } from './builder.js';
export {
  PADDING,
  channelDataPadding,
  decodeChannelData,
  encodeChannelData,
  isValidChannelNumber,
  writeChannelDataHeader,
  type ChannelData,
} from './channel-data.js';
export { FrameKind, StreamFramer, type FrameHandler, type FramerOptions, type FramingError } from './stream-framer.js';
export { dataIndicationLength, writeDataIndication } from './data-indication.js';
export {
  DATAGRAM_FRAMING_VERSION,
  DATAGRAM_FRAME_HEADER_LENGTH,
  DatagramFrameDecoder,
  MAX_DATAGRAM_FRAME_BODY,
  encodeDatagramFrame,
  encodeDatagramPreamble,
  negotiatedDatagramVersion,
  type DatagramDecoderHandler,
  type DatagramDecoderOptions,
  type DatagramFramingError,
} from './datagram-framing.js';
export { DropClass, LARGE_PAYLOAD_BYTES, classifyFrame, classifyPayload, droppableOnArrival, newFrameClass, type FrameClass } from './drop-class.js';
export {
  DELAY_FEEDBACK_ATTRIBUTE,
  DELAY_FEEDBACK_LENGTH,
  DELAY_FEEDBACK_VERSION,
  DELAY_FEEDBACK_INDICATION_LENGTH,
  DELAY_FEEDBACK_OFFER,
  clockDiffMs,
  encodeDelayFeedbackIndication,
  isBindingIndication,
  ALLOCATE_REQUEST,
  ALLOCATE_SUCCESS,
  REFRESH_SUCCESS,
  hasDelayFeedbackOffer,
  readDelayFeedbackIndication,
  isDelayFeedbackOffer,
  withDelayFeedbackOffer,
  withoutDelayFeedback,
  decodeDelayFeedback,
  encodeDelayFeedback,
  type DelayFeedback,
} from './delay-feedback.js';
