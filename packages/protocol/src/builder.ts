// Encoding STUN messages: attributes are appended in order, integrity and FINGERPRINT are
// computed over the final bytes at build time.
import { randomBytes } from 'node:crypto';
import { encodeAttributeValue, type AttributeValue } from './attributes.js';
import { ATTRIBUTE_HEADER_LENGTH, AttributeType, HEADER_LENGTH, MAGIC_COOKIE, type MessageClass, TRANSACTION_ID_LENGTH } from './constants.js';
import { computeFingerprint, computeHmac } from './integrity.js';
import { encodeMessageType } from './message-type.js';

export interface BuildOptions {
  /** Long-term or short-term key; adds MESSAGE-INTEGRITY (and/or -SHA256). */
  readonly integrityKey?: Buffer;
  /** Add MESSAGE-INTEGRITY (HMAC-SHA1). Default true when a key is given. */
  readonly sha1?: boolean;
  /** Add MESSAGE-INTEGRITY-SHA256 (after MESSAGE-INTEGRITY when both). Default false. */
  readonly sha256?: boolean;
  /** Add FINGERPRINT last. */
  readonly fingerprint?: boolean;
}

interface Pending {
  readonly type: number;
  readonly value: Buffer;
  readonly padding: Buffer | undefined;
}

const ZERO_PAD = Buffer.alloc(3);

export function newTransactionId(): Buffer {
  return randomBytes(TRANSACTION_ID_LENGTH);
}

export class MessageBuilder {
  readonly #header: Buffer;
  readonly #attrs: Pending[] = [];
  #length = 0;

  constructor(method: number, messageClass: MessageClass, transactionId: Buffer = newTransactionId()) {
    if (transactionId.length !== TRANSACTION_ID_LENGTH) throw new RangeError('transaction id must be 12 bytes');
    this.#header = Buffer.alloc(HEADER_LENGTH);
    this.#header.writeUInt16BE(encodeMessageType(method, messageClass), 0);
    this.#header.writeUInt32BE(MAGIC_COOKIE, 4);
    transactionId.copy(this.#header, 8);
  }

  /** The header as it stands (type, cookie, transaction id): the XOR key for addresses. */
  get header(): Buffer {
    return this.#header;
  }

  /** Appends a typed attribute. */
  add(type: number, value: AttributeValue): this {
    return this.addRaw(type, encodeAttributeValue(type, value, this.#header));
  }

  /**
   * Appends raw value bytes. `padding` (for re-encoding byte for byte) must be exactly the
   * bytes needed to reach a multiple of 4; zeros when omitted.
   */
  addRaw(type: number, value: Buffer, padding?: Buffer): this {
    if (value.length > 0xffff) throw new RangeError('attribute value over 65535 bytes');
    const padLen = (4 - (value.length % 4)) % 4;
    if (padding !== undefined && padding.length !== padLen) throw new RangeError(`padding must be ${padLen} bytes`);
    this.#attrs.push({ type, value, padding });
    this.#length += ATTRIBUTE_HEADER_LENGTH + value.length + padLen;
    return this;
  }

  build(options: BuildOptions = {}): Buffer {
    const key = options.integrityKey;
    const sha1 = key !== undefined && options.sha1 !== false;
    const sha256 = key !== undefined && options.sha256 === true;
    const total = HEADER_LENGTH + this.#length + (sha1 ? 24 : 0) + (sha256 ? 36 : 0) + (options.fingerprint ? 8 : 0);
    if (total - HEADER_LENGTH > 0xffff) throw new RangeError('message over 65535 bytes');
    const out = Buffer.allocUnsafe(total);
    this.#header.copy(out, 0);
    out.writeUInt16BE(total - HEADER_LENGTH, 2);
    let pos = HEADER_LENGTH;
    for (const a of this.#attrs) {
      out.writeUInt16BE(a.type, pos);
      out.writeUInt16BE(a.value.length, pos + 2);
      a.value.copy(out, pos + 4);
      pos += 4 + a.value.length;
      const padLen = (4 - (a.value.length % 4)) % 4;
      (a.padding ?? ZERO_PAD).copy(out, pos, 0, padLen);
      pos += padLen;
    }
    if (sha1 && key) {
      out.writeUInt16BE(AttributeType.MessageIntegrity, pos);
      out.writeUInt16BE(20, pos + 2);
      computeHmac(out, pos, 20, key, 'sha1').copy(out, pos + 4);
      pos += 24;
    }
    if (sha256 && key) {
      out.writeUInt16BE(AttributeType.MessageIntegritySha256, pos);
      out.writeUInt16BE(32, pos + 2);
      computeHmac(out, pos, 32, key, 'sha256').copy(out, pos + 4);
      pos += 36;
    }
    if (options.fingerprint) {
      out.writeUInt16BE(AttributeType.Fingerprint, pos);
      out.writeUInt16BE(4, pos + 2);
      out.writeUInt32BE(computeFingerprint(out, pos), pos + 4);
      pos += 8;
    }
    return out;
  }
}
