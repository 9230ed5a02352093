// The 14-bit STUN message type interleaves the class bits C1 C0 with the method bits (RFC 8489 §5).
import type { MessageClass } from './constants.js';

export function encodeMessageType(method: number, messageClass: MessageClass): number {
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((messageClass & 0b01) << 4) | ((messageClass & 0b10) << 7);
}

export function methodOf(type: number): number {
  return (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
}

export function classOf(type: number): MessageClass {
  return (((type >> 4) & 0b01) | ((type >> 7) & 0b10)) as MessageClass;
}
