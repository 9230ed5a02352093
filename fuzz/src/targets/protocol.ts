// The codec targets: whole-message decoding with re-encoding, ChannelData, and TCP framing.
import { isDeepStrictEqual } from 'node:util';
import {
  ATTRIBUTE_KINDS,
  FrameKind,
  MAGIC_COOKIE,
  MessageBuilder,
  StreamFramer,
  decodeAttribute,
  decodeChannelData,
  decodeMessage,
  encodeChannelData,
  isValidChannelNumber,
  WireKind,
  wireKindOf,
  readAddressAttribute,
  readAttributes,
  readText,
  readUint32,
  verifyFingerprint,
  verifyIntegrity,
  type AttributeValue,
  type FramingError,
} from '@onionturn/protocol';
import { havoc, mutateStun, shrinkStun } from '../mutate.js';
import { Rng } from '../rng.js';
import { RFC5769, channelDataSeeds, turnMessages } from '../seeds.js';
import { FuzzCheckError, check, type Target } from '../target.js';

const KEY = Buffer.from('VOkJxbRl1RmTxUk/WvJxBt');
const KNOWN_TYPES = Object.keys(ATTRIBUTE_KINDS).map(Number);

export const stunDecoder: Target = {
  name: 'stun-decoder',
  maxSize: 0xffff + 20,
  budgetUs: (n) => 50_000 + 5 * n,
  seeds: () => [...RFC5769, ...turnMessages()],
  mutate: (input, rng, corpus) => mutateStun(input, rng, corpus, 0xffff + 20),
  shrink: shrinkStun,
  run(input) {
    const d = decodeMessage(input);
    if (!d.ok) return `err:${d.error.code}`;
    const msg = d.value;
    check(wireKindOf(input[0] as number) === WireKind.Stun, 'decoded STUN whose first byte says otherwise');
    check(msg.raw.length === input.length, 'raw is not the whole input');
    // Every reader over every known type: none may throw.
    for (const t of KNOWN_TYPES) {
      readAttributes(msg, t);
      readText(msg, t);
      readAddressAttribute(msg, t);
      readUint32(msg, t);
    }
    if (msg.fingerprintOffset >= 0) verifyFingerprint(msg);
    if (msg.integrityOffset >= 0 || msg.integritySha256Offset >= 0) verifyIntegrity(msg, KEY);
    if (msg.classic) return `classic:${msg.attributes.length > 0}`;
    // Re-encode what was decoded; it must decode to the same values.
    const b = new MessageBuilder(msg.method, msg.messageClass, msg.transactionId);
    const values: (AttributeValue | undefined)[] = [];
    const parts: string[] = [];
    for (const attr of msg.attributes) {
      const v = decodeAttribute(msg, attr);
      if (v.ok) {
        try {
          b.add(attr.type, v.value);
        } catch (e) {
          throw new FuzzCheckError(
            `attribute 0x${attr.type.toString(16)} (${v.value.kind}) decodes to a value that does not re-encode: ${(e as Error).message} | value ${JSON.stringify(v.value)}`,
          );
        }
        values.push(v.value);
        parts.push(`${attr.type}:${v.value.kind}`);
      } else {
        b.addRaw(attr.type, attr.value);
        values.push(undefined);
        parts.push(`${attr.type}!${v.error.code}`);
      }
    }
    const again = decodeMessage(b.build());
    check(again.ok, `re-encoded message does not decode: ${again.ok ? '' : again.error.reason}`);
    const m2 = again.value;
    check(m2.method === msg.method && m2.messageClass === msg.messageClass && m2.transactionId.equals(msg.transactionId), 're-encoded header differs');
    check(m2.attributes.length === msg.attributes.length, `re-encoded message has ${m2.attributes.length} attributes, not ${msg.attributes.length}`);
    m2.attributes.forEach((a, i) => {
      const want = values[i];
      check(a.type === msg.attributes[i]?.type, `attribute ${i} changed type`);
      if (want === undefined) return;
      const got = decodeAttribute(m2, a);
      check(got.ok && isDeepStrictEqual(got.value, want), `attribute 0x${a.type.toString(16)} re-encodes to a different value`);
    });
    return `ok:${msg.method}:${msg.messageClass}:${[...new Set(parts)].sort().join(',')}:${msg.unknownRequired.length > 0}:${msg.ignoredAfterIntegrity > 0}`;
  },
};

export const channelData: Target = {
  name: 'channel-data',
  maxSize: 4 + 0xffff + 3,
  budgetUs: (n) => 50_000 + 2 * n,
  seeds: channelDataSeeds,
  mutate: (input, rng, corpus) => havoc(input, rng, corpus, 4 + 0xffff + 3),
  run(input) {
    const d = decodeChannelData(input);
    if (!d.ok) return `err:${d.error.code}`;
    const { channel, data } = d.value;
    check(wireKindOf(input[0] as number) === WireKind.ChannelData, 'decoded ChannelData whose first byte says otherwise');
    check(isValidChannelNumber(channel), `decoded reserved channel 0x${channel.toString(16)}`);
    check(data.length === input.readUInt16BE(2), 'data length differs from the header');
    // The TCP form (padded to 4) decodes the same; encoding gives the datagram's bytes back.
    const tcp = encodeChannelData(channel, data, true);
    check(tcp.length % 4 === 0, 'TCP form is not padded');
    check(tcp.subarray(0, 4 + data.length).equals(input.subarray(0, 4 + data.length)), 'encode differs');
    const again = decodeChannelData(tcp);
    check(again.ok && again.value.channel === channel && again.value.data.equals(data), 'TCP form decodes differently');
    return `ok:${input.length - 4 - data.length}`;
  },
};

interface Framed {
  frames: { kind: FrameKind; frame: Buffer }[];
  error: FramingError | undefined;
  buffered: number;
}

function frameAll(stream: Buffer, chunks: readonly number[], options: { rfc5766Channels: boolean; maxFrameLength: number }): Framed {
  const frames: { kind: FrameKind; frame: Buffer }[] = [];
  const framer = new StreamFramer((frame, kind) => frames.push({ kind, frame: Buffer.from(frame) }), options);
  let error: FramingError | undefined;
  let pos = 0;
  let i = 0;
  while (pos < stream.length) {
    const size = chunks.length > 0 ? (chunks[i++ % chunks.length] as number) : stream.length;
    const chunk = stream.subarray(pos, pos + size);
    pos += chunk.length;
    error = framer.push(chunk);
    check(framer.buffered <= options.maxFrameLength, `framer holds ${framer.buffered} bytes, over the frame limit`);
    if (error) {
      check(framer.push(Buffer.from([0, 1, 0, 0])) === error, 'framer did not stay failed');
      break;
    }
  }
  return { frames, error, buffered: framer.buffered };
}

/**
 * Input: byte 0 = options (bit 0: RFC 5766 channels; bit 1: a 512-byte frame limit), byte 1 =
 * seed of the chunk sizes, the rest = the TCP byte stream.
 */
export const streamFramer: Target = {
  name: 'stream-framer',
  maxSize: 16_384,
  budgetUs: (n) => 50_000 + 5 * n,
  seeds: () => {
    const msgs = [...RFC5769, ...turnMessages()];
    const cds = channelDataSeeds();
    return [
      Buffer.concat([Buffer.from([0, 7]), ...msgs.slice(4, 8), ...cds]),
      Buffer.concat([Buffer.from([1, 1]), ...cds, ...msgs.slice(0, 2)]),
      Buffer.concat([Buffer.from([2, 3]), ...msgs]),
      Buffer.concat([Buffer.from([0, 0]), ...cds.slice(0, 2), Buffer.from('GET / HTTP/1.1\r\n\r\n')]),
    ];
  },
  mutate(input, rng, corpus) {
    if (input.length > 2 && rng.chance(0.5)) {
      // Mutate one frame of the stream in a structure-aware way.
      const head = input.subarray(0, 2);
      const body = input.subarray(2);
      const split = rng.below(body.length);
      const tail = body.subarray(split);
      const m = tail.length >= 20 && wireKindOf(tail[0] as number) === WireKind.Stun ? mutateStun(tail, rng, corpus, 4096) : havoc(tail, rng, corpus, 4096);
      return Buffer.concat([head, body.subarray(0, split), m]).subarray(0, 16_384);
    }
    return havoc(input, rng, corpus, 16_384);
  },
  run(input) {
    if (input.length < 2) return 'short';
    const options = { rfc5766Channels: ((input[0] as number) & 1) !== 0, maxFrameLength: ((input[0] as number) & 2) !== 0 ? 512 : 0xffff + 20 };
    const rng = new Rng(input[1] as number);
    const chunks = Array.from({ length: 8 }, () => rng.pick([1, 2, 3, 4, 5, 7, 20, 64, 1500]));
    const stream = input.subarray(2);
    const whole = frameAll(stream, [], options);
    const split = frameAll(stream, chunks, options);
    check(whole.frames.length === split.frames.length, `chunking changed the frame count (${whole.frames.length} vs ${split.frames.length})`);
    check((whole.error?.code ?? '') === (split.error?.code ?? ''), 'chunking changed the error');
    let wire = 0;
    for (const [i, f] of whole.frames.entries()) {
      const g = split.frames[i];
      check(g !== undefined && g.kind === f.kind && g.frame.equals(f.frame), `frame ${i} differs when chunked`);
      if (f.kind === FrameKind.Stun) {
        check(f.frame.length === 20 + f.frame.readUInt16BE(2) && f.frame.readUInt32BE(4) === MAGIC_COOKIE, 'bad STUN frame');
        wire += f.frame.length;
      } else {
        check(f.frame.length === 4 + f.frame.readUInt16BE(2), 'bad ChannelData frame');
        wire += f.frame.length + ((4 - (f.frame.length & 3)) & 3);
      }
      check(f.frame.length <= options.maxFrameLength, 'frame over the limit');
    }
    if (!whole.error) check(wire + whole.buffered === stream.length, `framer lost bytes: ${wire} framed + ${whole.buffered} held != ${stream.length}`);
    return `${Math.min(whole.frames.length, 8)}:${whole.error?.code ?? 'ok'}:${whole.buffered > 0}:${(input[0] as number) & 3}`;
  },
};
