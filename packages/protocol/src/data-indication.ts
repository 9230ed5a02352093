// A Data indication (RFC 8656 §11.4) written straight into one buffer: the relay's per-packet
// path for peers without a channel, without the builder's intermediate objects.
import { AddressFamily, AttributeType, HEADER_LENGTH, MAGIC_COOKIE, MessageClass, Method } from './constants.js';
import { encodeMessageType } from './message-type.js';

const DATA_INDICATION_TYPE = encodeMessageType(Method.Data, MessageClass.Indication);
const COOKIE_HI = MAGIC_COOKIE >>> 16;

/** Bytes a Data indication for `dataLength` bytes to/from a peer of `ipLength` (4 or 16) takes. */
export function dataIndicationLength(ipLength: number, dataLength: number): number {
  return HEADER_LENGTH + 4 + 4 + ipLength + 4 + ((dataLength + 3) & ~3);
}

/** Largest STUN message body: the header's length field has 16 bits. */
const MAX_BODY = 0xffff;

/**
 * Writes a Data indication with XOR-PEER-ADDRESS (peer `ip` bytes, `port`) and DATA into `out`
 * at 0 and returns its length. `transactionId` is 12 bytes; `out` must hold dataIndicationLength().
 * Returns -1 (writing nothing) when the data is too big for one STUN message (an IPv6 peer's
 * datagram of 65505 bytes or more).
 */
export function writeDataIndication(out: Buffer, transactionId: Buffer, ip: Buffer, port: number, data: Buffer): number {
  const ipLen = ip.length;
  const total = dataIndicationLength(ipLen, data.length);
  if (total - HEADER_LENGTH > MAX_BODY) return -1;
  out.writeUInt16BE(DATA_INDICATION_TYPE, 0);
  out.writeUInt16BE(total - HEADER_LENGTH, 2);
  out.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(out, 8, 0, 12);
  let pos = HEADER_LENGTH;
  out.writeUInt16BE(AttributeType.XorPeerAddress, pos);
  out.writeUInt16BE(4 + ipLen, pos + 2);
  out[pos + 4] = 0;
  out[pos + 5] = ipLen === 4 ? AddressFamily.IPv4 : AddressFamily.IPv6;
  out.writeUInt16BE(port ^ COOKIE_HI, pos + 6);
  // XOR key: the cookie then the transaction id, i.e. header bytes 4..20.
  for (let i = 0; i < ipLen; i++) out[pos + 8 + i] = (ip[i] as number) ^ (out[4 + i] as number);
  pos += 8 + ipLen;
  out.writeUInt16BE(AttributeType.Data, pos);
  out.writeUInt16BE(data.length, pos + 2);
  data.copy(out, pos + 4);
  pos += 4 + data.length;
  while (pos < total) out[pos++] = 0;
  return total;
}
