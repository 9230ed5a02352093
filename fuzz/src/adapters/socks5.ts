// The one place the fuzzer names the shim's SOCKS5 codec, an internal of packages/client reached
// by its "internal/" subpath (the index exports the public API only): a move or rename of the
// codec is a change here only.
export { Reply, connectReplyLength, encodeConnect, encodeGreeting, encodeUserPass, replyText } from '@onionturn/client/internal/socks5-codec';

/** RFC 1928 address types (the codec keeps its own copy unexported). */
export const AddressType = { IPv4: 0x01, Domain: 0x03, IPv6: 0x04 } as const;

// The SOCKS5 front end's server-side codec and the shim's own TURN client session (SOCKS UDP, forwards).
export {
  parseGreeting,
  parseRequest,
  parseResolveReply,
  parseUdpDatagram,
  parseUserPass,
  encodeReply,
  encodeUdpHeader,
} from '@onionturn/client/internal/socks5-server-codec';
export { TurnClientSession } from '@onionturn/client/internal/turn-client-session';
