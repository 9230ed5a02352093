// RFC 8016 mobility tickets: what a client shows in a Refresh from a new 5-tuple to take its
// allocation over. Opaque and unforgeable: AES-256-GCM over the allocation id and a generation
// (bumped at every ticket, so only the newest one works), under a key made when the server starts
// (injected in tests). The nonce is a counter: unique per key without a random source per ticket.
// With --workers the key is the cluster's (all workers share it) and the sealed content also says
// which worker holds the allocation and which life of that worker (its incarnation, a number the
// primary never gives twice): any worker can route a ticket to its holder, and a ticket made
// before a worker restarted names no allocation of its new life even when the ids coincide.
import { createCipheriv, createDecipheriv } from 'node:crypto';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const PLAIN_BYTES = 16; // worker, incarnation, allocation id, generation: uint32 each
export const TICKET_BYTES = NONCE_BYTES + PLAIN_BYTES + TAG_BYTES;

/** What a valid ticket names. */
export interface TicketContent {
  readonly worker: number;
  readonly incarnation: number;
  readonly allocationId: number;
  readonly generation: number;
}

/** Who issues tickets: the worker index (0 in a single process) and this life of it. */
export interface TicketIssuer {
  readonly worker: number;
  readonly incarnation: number;
}

export class MobilityTickets {
  readonly #key: Buffer;
  readonly #self: TicketIssuer;
  #counter = 0n;

  /**
   * `key`: 32 bytes, secret, made once per server (cluster) start. `self`: unique per key (a
   * single process has the key to itself). The GCM nonce is the incarnation and a counter, so
   * workers sharing the key never use one nonce twice.
   */
  constructor(key: Buffer, self: TicketIssuer = { worker: 0, incarnation: 0 }) {
    if (key.length !== 32) throw new Error('mobility ticket key must be 32 bytes');
    this.#key = Buffer.from(key);
    this.#self = self;
  }

  get self(): TicketIssuer {
    return this.#self;
  }

  issue(allocationId: number, generation: number): Buffer {
    const nonce = Buffer.alloc(NONCE_BYTES);
    nonce.writeUInt32BE(this.#self.incarnation >>> 0, 0);
    nonce.writeBigUInt64BE(++this.#counter, NONCE_BYTES - 8);
    const plain = Buffer.alloc(PLAIN_BYTES);
    plain.writeUInt32BE(this.#self.worker >>> 0, 0);
    plain.writeUInt32BE(this.#self.incarnation >>> 0, 4);
    plain.writeUInt32BE(allocationId >>> 0, 8);
    plain.writeUInt32BE(generation >>> 0, 12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([nonce, body, cipher.getAuthTag()]);
  }

  /** The content of a ticket this server (cluster) made, or undefined (wrong size, forged, another key). */
  open(ticket: Buffer): TicketContent | undefined {
    if (ticket.length !== TICKET_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, ticket.subarray(0, NONCE_BYTES));
      decipher.setAuthTag(ticket.subarray(NONCE_BYTES + PLAIN_BYTES));
      const plain = Buffer.concat([decipher.update(ticket.subarray(NONCE_BYTES, NONCE_BYTES + PLAIN_BYTES)), decipher.final()]);
      return { worker: plain.readUInt32BE(0), incarnation: plain.readUInt32BE(4), allocationId: plain.readUInt32BE(8), generation: plain.readUInt32BE(12) };
    } catch {
      return undefined;
    }
  }

  /**
   * Where a Refresh with this ticket is answered: 'here' (this worker made it: the take-over runs
   * here, and says 437 for a ticket of an earlier life), another worker's index, or 'unknown' (not
   * a ticket of this server: 400 here).
   */
  route(ticket: Buffer): TicketRoute {
    const content = this.open(ticket);
    if (content === undefined) return 'unknown';
    return content.worker === this.#self.worker ? 'here' : content.worker;
  }
}

export type TicketRoute = 'here' | 'unknown' | number;
