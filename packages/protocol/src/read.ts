// Typed reads of a decoded message's attributes, for handlers that want one value.
import type { TransportAddress } from './address.js';
import { decodeAttributeValue, type AttributeValue } from './attributes.js';
import { AttributeType, HEADER_LENGTH } from './constants.js';
import { getAttribute, type RawAttribute, type StunMessage } from './message.js';
import type { Result } from './result.js';

export function decodeAttribute(msg: StunMessage, attr: RawAttribute): Result<AttributeValue> {
  return decodeAttributeValue(attr.type, attr.value, msg.raw.subarray(0, HEADER_LENGTH));
}

/** The first attribute of `type`, typed: undefined when absent, an error result when malformed. */
export function readAttribute(msg: StunMessage, type: number): Result<AttributeValue> | undefined {
  const attr = getAttribute(msg, type);
  return attr ? decodeAttribute(msg, attr) : undefined;
}

/** Every attribute of `type` in order (XOR-PEER-ADDRESS may repeat in CreatePermission). */
export function readAttributes(msg: StunMessage, type: number): Result<AttributeValue>[] {
  return msg.attributes.filter((a) => a.type === type).map((a) => decodeAttribute(msg, a));
}

/** Text value (USERNAME, REALM, NONCE, SOFTWARE) or undefined when absent or malformed. */
export function readText(msg: StunMessage, type: number): string | undefined {
  const r = readAttribute(msg, type);
  return r?.ok && r.value.kind === 'text' ? r.value.text : undefined;
}

/** Address value or undefined when absent or malformed. */
export function readAddressAttribute(msg: StunMessage, type: number): TransportAddress | undefined {
  const r = readAttribute(msg, type);
  return r?.ok && r.value.kind === 'address' ? r.value.address : undefined;
}

/** ERROR-CODE's code and reason, or undefined when absent or malformed. */
export function readErrorCode(msg: StunMessage): { readonly code: number; readonly reason: string } | undefined {
  const r = readAttribute(msg, AttributeType.ErrorCode);
  return r?.ok && r.value.kind === 'error-code' ? { code: r.value.code, reason: r.value.reason } : undefined;
}

/** 32-bit value (LIFETIME, PRIORITY, FINGERPRINT) or undefined. */
export function readUint32(msg: StunMessage, type: number): number | undefined {
  const r = readAttribute(msg, type);
  return r?.ok && r.value.kind === 'uint32' ? r.value.value : undefined;
}
