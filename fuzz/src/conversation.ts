// Inputs that are whole conversations, shared by the targets that drive a state machine (the
// server core, the shim's flow): `[config byte]` then records `[op u8][length u16][payload]`.
// Parsing, writing, shrinking (one record less) and structure-aware mutation live here once; a
// target says only what differs: its op flags, its config bits, which records to prefer and how
// to make a new one.
import { havoc, mutateStun } from './mutate.js';
import type { Rng } from './rng.js';

export interface ConversationRecord {
  op: number;
  payload: Buffer;
}

export interface Conversation {
  config: number;
  records: ConversationRecord[];
}

export function parseConversation(input: Buffer): Conversation {
  const records: ConversationRecord[] = [];
  let pos = 1;
  while (pos + 3 <= input.length) {
    const op = input[pos] as number;
    const len = input.readUInt16BE(pos + 1);
    const payload = input.subarray(pos + 3, pos + 3 + len);
    records.push({ op, payload });
    pos += 3 + len;
  }
  return { config: input[0] ?? 0, records };
}

export function writeConversation(c: Conversation): Buffer {
  const parts: Buffer[] = [Buffer.from([c.config & 0xff])];
  for (const r of c.records) {
    const h = Buffer.alloc(3);
    h[0] = r.op;
    h.writeUInt16BE(r.payload.length & 0xffff, 1);
    parts.push(h, r.payload.subarray(0, 0xffff));
  }
  return Buffer.concat(parts);
}

/** The input with one record less, for each record: how findings are minimised. */
export function shrinkConversation(input: Buffer): Buffer[] {
  const conv = parseConversation(input);
  return conv.records.map((_, i) => writeConversation({ config: conv.config, records: [...conv.records.slice(0, i), ...conv.records.slice(i + 1)] }));
}

/** What a target's conversations are made of. */
export interface ConversationShape {
  /** Op bits a mutation may flip (flags such as re-sign, and the low bits of the kind). */
  readonly opFlags: readonly number[];
  /** Config bits a mutation may flip. */
  readonly configBits: readonly number[];
  /** Records mutated most often (most of the time, when there are any), e.g. STUN messages. */
  readonly preferred?: (r: ConversationRecord) => boolean;
  /** A record to insert. */
  newRecord(rng: Rng, corpus: readonly Buffer[]): ConversationRecord | undefined;
  /** Largest input. */
  readonly max: number;
}

export function mutateConversation(input: Buffer, rng: Rng, corpus: readonly Buffer[], shape: ConversationShape): Buffer {
  if (rng.chance(0.05)) return havoc(input, rng, corpus, shape.max);
  const conv = parseConversation(input);
  const recs = conv.records;
  const rounds = 1 + rng.below(3);
  for (let i = 0; i < rounds; i++) {
    const n = recs.length;
    switch (rng.below(10)) {
      case 0:
      case 1:
      case 2: {
        // One message, structure-aware when it looks like STUN.
        const preferred = shape.preferred ? recs.filter(shape.preferred) : [];
        const r = preferred.length > 0 && rng.chance(0.8) ? rng.pick(preferred) : n > 0 ? rng.pick(recs) : undefined;
        if (!r) break;
        r.payload = r.payload.length >= 20 && (r.payload[0] as number) < 0x40 ? mutateStun(r.payload, rng, [], 2048) : havoc(r.payload, rng, [], 2048);
        break;
      }
      case 3:
        if (n > 0) rng.pick(recs).op ^= rng.pick(shape.opFlags);
        break;
      case 4:
        if (n > 0) recs.splice(rng.below(n), 1);
        break;
      case 5:
        if (n > 0) recs.splice(rng.below(n + 1), 0, { ...rng.pick(recs) });
        break;
      case 6:
        if (n > 1) {
          const a = rng.below(n);
          const b = rng.below(n);
          const t = recs[a] as ConversationRecord;
          recs[a] = recs[b] as ConversationRecord;
          recs[b] = t;
        }
        break;
      case 7:
      case 8: {
        const r = shape.newRecord(rng, corpus);
        if (r) recs.splice(rng.below(n + 1), 0, r);
        break;
      }
      default:
        conv.config ^= rng.pick(shape.configBits);
    }
  }
  const out = writeConversation(conv);
  return out.length > shape.max ? out.subarray(0, shape.max) : out;
}
