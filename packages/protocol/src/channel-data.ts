// ChannelData messages (RFC 8656 §12.4-12.5): 2-byte channel number, 2-byte length, data.
// Padded to a multiple of 4 on TCP; padding optional on UDP.
import { CHANNEL_DATA_HEADER_LENGTH, ChannelNumber } from './constants.js';
import { fail, ok, type Result } from './result.js';

export interface ChannelData {
  readonly channel: number;
  /** The application data (a view into the input). */
  readonly data: Buffer;
}

/** Zero bytes for padding: slice [0, n) for n in 0..3. */
export const PADDING = Buffer.alloc(4);

export function isValidChannelNumber(n: number): boolean {
  return n >= ChannelNumber.Min && n <= ChannelNumber.Max;
}

/** Bytes of padding after `dataLength` bytes of data on TCP. */
export function channelDataPadding(dataLength: number): number {
  return (4 - (dataLength & 3)) & 3;
}

/**
 * Decodes a ChannelData message from a UDP datagram or a framer frame. Up to 3 bytes of
 * trailing padding are accepted (UDP may or may not pad; TCP must).
 */
export function decodeChannelData(buf: Buffer): Result<ChannelData> {
  if (buf.length < CHANNEL_DATA_HEADER_LENGTH) return fail('truncated', 'ChannelData shorter than its 4-byte header');
  const channel = buf.readUInt16BE(0);
  if ((channel & 0xc000) !== 0x4000) return fail('not-channel-data', 'first two bits are not 0b01');
  if (!isValidChannelNumber(channel)) return fail('bad-channel-number', `channel 0x${channel.toString(16)} is outside 0x4000-0x4FFF`);
  const len = buf.readUInt16BE(2);
  const end = CHANNEL_DATA_HEADER_LENGTH + len;
  if (buf.length < end) return fail('truncated', `ChannelData says ${len} data bytes, has ${buf.length - CHANNEL_DATA_HEADER_LENGTH}`);
  if (buf.length > end + channelDataPadding(len)) return fail('bad-length', 'ChannelData has trailing bytes beyond its padding');
  return ok({ channel, data: buf.subarray(CHANNEL_DATA_HEADER_LENGTH, end) });
}

/** Encodes ChannelData; `pad` for TCP (RFC 8656 §12.5 MUST), optional for UDP. */
export function encodeChannelData(channel: number, data: Buffer, pad: boolean): Buffer {
  if (!isValidChannelNumber(channel)) throw new RangeError(`channel 0x${channel.toString(16)} is outside 0x4000-0x4FFF`);
  if (data.length > 0xffff) throw new RangeError('ChannelData over 65535 bytes');
  const padLen = pad ? channelDataPadding(data.length) : 0;
  const out = Buffer.allocUnsafe(CHANNEL_DATA_HEADER_LENGTH + data.length + padLen);
  writeChannelDataHeader(out, 0, channel, data.length);
  data.copy(out, CHANNEL_DATA_HEADER_LENGTH);
  out.fill(0, CHANNEL_DATA_HEADER_LENGTH + data.length);
  return out;
}

export function writeChannelDataHeader(out: Buffer, offset: number, channel: number, dataLength: number): void {
  out.writeUInt16BE(channel, offset);
  out.writeUInt16BE(dataLength, offset + 2);
}
