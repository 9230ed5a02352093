// Byte-level and STUN-aware mutators. Every mutator returns a new buffer no longer than `max`.
import { computeFingerprint } from '@onionturn/protocol';
import type { Rng } from './rng.js';

const BYTES = [0x00, 0x01, 0x03, 0x04, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xfe, 0xff];
const U16 = [0, 1, 3, 4, 5, 8, 20, 0x3fff, 0x4000, 0x4fff, 0x5000, 0x7fff, 0x8000, 0xfffc, 0xffff];
const U32 = [0, 1, 0x2112a442, 0x7fffffff, 0x80000000, 0xffffffff];

/** The attribute types the decoder knows, plus a few it does not (comprehension required and optional). */
export const ATTRIBUTE_TYPES = [
  0x0001, 0x0006, 0x0008, 0x0009, 0x000a, 0x000c, 0x000d, 0x0012, 0x0013, 0x0014, 0x0015, 0x0016, 0x0017, 0x0018, 0x0019, 0x001a, 0x001c, 0x001d, 0x001e,
  0x0020, 0x0022, 0x0024, 0x0025, 0x8000, 0x8001, 0x8002, 0x8003, 0x8004, 0x8022, 0x8023, 0x8028, 0x8029, 0x802a, 0x0002, 0x7fff, 0xc001,
];

function clamp(buf: Buffer, max: number): Buffer {
  return buf.length > max ? buf.subarray(0, max) : buf;
}

/** One to four random byte-level edits (AFL-style havoc). */
export function havoc(input: Buffer, rng: Rng, corpus: readonly Buffer[], max: number): Buffer {
  let buf = Buffer.from(input);
  const rounds = 1 + rng.below(4);
  for (let r = 0; r < rounds; r++) {
    const n = buf.length;
    switch (rng.below(12)) {
      case 0:
        if (n > 0) {
          const at = rng.below(n);
          buf[at] = (buf[at] as number) ^ (1 << rng.below(8));
        }
        break;
      case 1:
        if (n > 0) buf[rng.below(n)] = rng.u32() & 0xff;
        break;
      case 2:
        if (n > 0) buf[rng.below(n)] = rng.pick(BYTES);
        break;
      case 3:
        if (n >= 2) {
          const at = rng.chance(0.5) ? rng.below(n >> 1) * 2 : rng.below(n - 1);
          const v = rng.chance(0.3) ? (buf.readUInt16BE(at) + rng.below(9) - 4) & 0xffff : rng.pick(U16);
          buf.writeUInt16BE(v, at);
        }
        break;
      case 4:
        if (n >= 4) buf.writeUInt32BE(rng.pick(U32), rng.below(n - 3));
        break;
      case 5: {
        if (n === 0) break;
        const at = rng.below(n);
        const len = 1 + rng.below(Math.min(n - at, 32));
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + len)]);
        break;
      }
      case 6: {
        const at = rng.below(n + 1);
        buf = Buffer.concat([buf.subarray(0, at), rng.bytes(1 + rng.below(16)), buf.subarray(at)]);
        break;
      }
      case 7: {
        if (n === 0) break;
        const from = rng.below(n);
        const len = 1 + rng.below(Math.min(n - from, 64));
        const at = rng.below(n + 1);
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(from, from + len), buf.subarray(at)]);
        break;
      }
      case 8: {
        const other = corpus.length > 0 ? rng.pick(corpus) : undefined;
        if (!other || other.length === 0) break;
        const from = rng.below(other.length);
        const len = 1 + rng.below(Math.min(other.length - from, 128));
        const at = rng.below(n + 1);
        const cut = rng.chance(0.5) ? at : Math.min(n, at + len);
        buf = Buffer.concat([buf.subarray(0, at), other.subarray(from, from + len), buf.subarray(cut)]);
        break;
      }
      case 9:
        if (n > 0) buf = buf.subarray(0, rng.below(n));
        break;
      case 10: {
        if (n === 0) break;
        const at = rng.below(n);
        buf.fill(rng.pick(BYTES), at, Math.min(n, at + 1 + rng.below(16)));
        break;
      }
      default:
        buf = Buffer.concat([buf, rng.bytes(1 + rng.below(8))]);
    }
  }
  return clamp(buf, max);
}

export interface LooseAttribute {
  type: number;
  value: Buffer;
}

/** Splits a STUN message into header and attributes without judging it (stops at the first bad one). */
export function splitStun(buf: Buffer): { header: Buffer; attrs: LooseAttribute[] } | undefined {
  if (buf.length < 20) return undefined;
  const attrs: LooseAttribute[] = [];
  let pos = 20;
  while (pos + 4 <= buf.length) {
    const len = buf.readUInt16BE(pos + 2);
    if (pos + 4 + len > buf.length) break;
    attrs.push({ type: buf.readUInt16BE(pos), value: buf.subarray(pos + 4, pos + 4 + len) });
    pos += 4 + ((len + 3) & ~3);
  }
  return { header: Buffer.from(buf.subarray(0, 20)), attrs };
}

/** Joins a header and attributes, with a correct length field and zero padding. */
export function joinStun(header: Buffer, attrs: readonly LooseAttribute[]): Buffer {
  const parts: Buffer[] = [Buffer.from(header)];
  let len = 0;
  for (const a of attrs) {
    const h = Buffer.alloc(4);
    h.writeUInt16BE(a.type, 0);
    h.writeUInt16BE(a.value.length & 0xffff, 2);
    const pad = (4 - (a.value.length & 3)) & 3;
    parts.push(h, a.value, Buffer.alloc(pad));
    len += 4 + a.value.length + pad;
  }
  const out = Buffer.concat(parts);
  out.writeUInt16BE(len & 0xffff, 2);
  return out;
}

/** Recomputes a trailing FINGERPRINT, if the message ends with one. */
export function fixFingerprint(buf: Buffer): Buffer {
  if (buf.length >= 28 && buf.readUInt16BE(buf.length - 8) === 0x8028 && buf.readUInt16BE(buf.length - 6) === 4) {
    const out = Buffer.from(buf);
    out.writeUInt32BE(computeFingerprint(out, out.length - 8), out.length - 4);
    return out;
  }
  return buf;
}

/** Structure-aware STUN mutation: keeps a valid header most of the time and edits attributes. */
export function mutateStun(input: Buffer, rng: Rng, corpus: readonly Buffer[], max: number): Buffer {
  const split = splitStun(input);
  if (!split || rng.chance(0.15)) return havoc(input, rng, corpus, max);
  const { header, attrs } = split;
  const rounds = 1 + rng.below(3);
  for (let r = 0; r < rounds; r++) {
    switch (rng.below(10)) {
      case 0:
        if (attrs.length > 0) attrs.splice(rng.below(attrs.length), 1);
        break;
      case 1:
        if (attrs.length > 0) attrs.splice(rng.below(attrs.length + 1), 0, { ...rng.pick(attrs) });
        break;
      case 2:
        if (attrs.length > 1) {
          const i = rng.below(attrs.length);
          const j = rng.below(attrs.length);
          const t = attrs[i] as LooseAttribute;
          attrs[i] = attrs[j] as LooseAttribute;
          attrs[j] = t;
        }
        break;
      case 3:
        if (attrs.length > 0) rng.pick(attrs).type = rng.chance(0.8) ? rng.pick(ATTRIBUTE_TYPES) : rng.u32() & 0xffff;
        break;
      case 4:
      case 5:
        if (attrs.length > 0) {
          const a = rng.pick(attrs);
          a.value = havoc(a.value, rng, [], 1024);
        }
        break;
      case 6: {
        // An attribute from another message of the corpus.
        const other = corpus.length > 0 ? splitStun(rng.pick(corpus)) : undefined;
        if (other && other.attrs.length > 0) attrs.splice(rng.below(attrs.length + 1), 0, { ...rng.pick(other.attrs) });
        break;
      }
      case 7:
        attrs.splice(rng.below(attrs.length + 1), 0, { type: rng.pick(ATTRIBUTE_TYPES), value: rng.bytes(rng.pick([0, 1, 2, 4, 8, 20, 32, rng.below(64)])) });
        break;
      case 8:
        // Method and class bits.
        header.writeUInt16BE(rng.chance(0.5) ? rng.pick([0x0001, 0x0003, 0x0004, 0x0008, 0x0009, 0x0016, 0x0017, 0x0111, 0x0113]) : rng.u32() & 0x3fff, 0);
        break;
      default:
        header[8 + rng.below(12)] = rng.u32() & 0xff;
    }
  }
  let out = joinStun(header, attrs);
  if (rng.chance(0.1)) out = havoc(out, rng, corpus, max);
  else out = fixFingerprint(out);
  return clamp(out, max);
}

/** Smaller STUN messages: one attribute dropped, or one value halved. */
export function shrinkStun(input: Buffer): Buffer[] {
  const split = splitStun(input);
  if (!split) return [];
  const out: Buffer[] = [];
  const { header, attrs } = split;
  for (let i = 0; i < attrs.length; i++) out.push(joinStun(header, [...attrs.slice(0, i), ...attrs.slice(i + 1)]));
  for (let i = 0; i < attrs.length; i++) {
    const a = attrs[i] as LooseAttribute;
    if (a.value.length >= 2)
      out.push(joinStun(header, [...attrs.slice(0, i), { type: a.type, value: a.value.subarray(0, a.value.length >> 1) }, ...attrs.slice(i + 1)]));
  }
  return out;
}
