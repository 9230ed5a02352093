// RFC 8016 mobility tickets: what a client shows in a Refresh from a new 5-tuple to take its
// allocation over. Opaque and unforgeable: AES-256-GCM over the allocation id and a generation
// (bumped at every ticket, so only the newest one works), under a key made when the core starts
// (injected in tests). The nonce is a counter: unique per key without a random source per ticket.
import { createCipheriv, createDecipheriv } from 'node:crypto';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const PLAIN_BYTES = 8; // allocation id, generation: uint32 each
export const TICKET_BYTES = NONCE_BYTES + PLAIN_BYTES + TAG_BYTES;

/** What a valid ticket names. */
export interface TicketContent {
  readonly allocationId: number;
  readonly generation: number;
}

export class MobilityTickets {
  readonly #key: Buffer;
  #counter = 0n;

  /** `key`: 32 bytes, secret, made once per server start. */
  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('mobility ticket key must be 32 bytes');
    this.#key = Buffer.from(key);
  }

  issue(allocationId: number, generation: number): Buffer {
    const nonce = Buffer.alloc(NONCE_BYTES);
    nonce.writeBigUInt64BE(++this.#counter, NONCE_BYTES - 8);
    const plain = Buffer.alloc(PLAIN_BYTES);
    plain.writeUInt32BE(allocationId >>> 0, 0);
    plain.writeUInt32BE(generation >>> 0, 4);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([nonce, body, cipher.getAuthTag()]);
  }

  /** The content of a ticket this server made, or undefined (wrong size, forged, another key). */
  open(ticket: Buffer): TicketContent | undefined {
    if (ticket.length !== TICKET_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, ticket.subarray(0, NONCE_BYTES));
      decipher.setAuthTag(ticket.subarray(NONCE_BYTES + PLAIN_BYTES));
      const plain = Buffer.concat([decipher.update(ticket.subarray(NONCE_BYTES, NONCE_BYTES + PLAIN_BYTES)), decipher.final()]);
      return { allocationId: plain.readUInt32BE(0), generation: plain.readUInt32BE(4) };
    } catch {
      return undefined;
    }
  }
}
