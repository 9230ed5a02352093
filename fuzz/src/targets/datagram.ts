// The datagram onion service's framing (protocol/datagram-framing.ts) and the gateway's rules on
// one stream (server/udp-gateway-session.ts), fed hostile streams in random chunkings.
import { DatagramFrameDecoder, encodeDatagramFrame, encodeDatagramPreamble, type DatagramFramingError } from '@onionturn/protocol';
import { GatewaySession, GatewayStats, type UdpGatewayLimits } from '@onionturn/server';
import { havoc } from '../mutate.js';
import { Rng } from '../rng.js';
import { check, type Target } from '../target.js';

interface Decoded {
  readonly version: number;
  readonly datagrams: Buffer[];
  readonly error: DatagramFramingError | undefined;
  readonly buffered: number;
}

function decodeAll(stream: Buffer, chunks: readonly number[], maxBody: number): Decoded {
  const datagrams: Buffer[] = [];
  const d = new DatagramFrameDecoder({ onDatagram: (p) => datagrams.push(Buffer.from(p)) }, { minVersion: 1, maxVersion: 255, maxBody });
  let error: DatagramFramingError | undefined;
  let pos = 0;
  let i = 0;
  while (pos < stream.length) {
    const size = chunks.length > 0 ? (chunks[i++ % chunks.length] as number) : stream.length;
    const chunk = stream.subarray(pos, pos + size);
    pos += chunk.length;
    error = d.push(chunk);
    check(d.buffered <= 3 + maxBody, `decoder holds ${d.buffered} bytes, over one frame`);
    if (error) {
      check(d.push(Buffer.from([0, 0, 0])) === error, 'decoder did not stay failed');
      break;
    }
  }
  return { version: d.version, datagrams, error, buffered: d.buffered };
}

/**
 * Input: byte 0 = options (bit 0: a 512-byte body limit, bit 1: a 600-byte gateway queue), byte 1
 * = seed of the chunk sizes, the rest = the stream as the gateway reads it.
 */
export const datagramFraming: Target = {
  name: 'datagram-framing',
  maxSize: 16_384,
  budgetUs: (n) => 50_000 + 5 * n,
  seeds: () => {
    const frames = [Buffer.alloc(0), Buffer.from('dns?'), Buffer.alloc(300, 7), Buffer.alloc(600, 1)].map((p) => encodeDatagramFrame(p) as Buffer);
    return [
      Buffer.concat([Buffer.from([0, 7]), encodeDatagramPreamble(), ...frames]),
      Buffer.concat([Buffer.from([1, 3]), encodeDatagramPreamble(), ...frames]),
      Buffer.concat([Buffer.from([2, 5]), encodeDatagramPreamble(2), ...frames, Buffer.from([1, 0, 1, 9])]),
      Buffer.concat([Buffer.from([0, 0]), Buffer.from('GET / HTTP/1.1\r\n\r\n')]),
    ];
  },
  mutate: (input, rng, corpus) => havoc(input, rng, corpus, 16_384),
  run(input) {
    if (input.length < 2) return 'short';
    const opts = input[0] as number;
    const maxBody = (opts & 1) !== 0 ? 512 : 0xffff;
    const rng = new Rng(input[1] as number);
    const chunks = Array.from({ length: 8 }, () => rng.pick([1, 2, 3, 4, 5, 7, 20, 64, 1500]));
    const stream = input.subarray(2);
    const whole = decodeAll(stream, [], maxBody);
    const split = decodeAll(stream, chunks, maxBody);
    check(whole.datagrams.length === split.datagrams.length, `chunking changed the datagram count (${whole.datagrams.length} vs ${split.datagrams.length})`);
    check((whole.error?.code ?? '') === (split.error?.code ?? ''), 'chunking changed the error');
    let wire = whole.version === 0 ? 0 : 1;
    for (const [i, p] of whole.datagrams.entries()) {
      check(split.datagrams[i]?.equals(p) === true, `datagram ${i} differs when chunked`);
      check(p.length <= maxBody, 'datagram over the limit');
      const again = encodeDatagramFrame(p) as Buffer;
      check(stream.subarray(wire, wire + again.length).equals(again), `datagram ${i} does not re-encode to its frame`);
      wire += again.length;
    }
    if (!whole.error) check(wire + whole.buffered === stream.length, `decoder lost bytes: ${wire} + ${whole.buffered} held != ${stream.length}`);

    // The gateway's rules on the same stream: what reaches the target, what goes back, one close.
    // Its decoder takes any frame the format allows and drops datagrams over maxDatagram.
    const full = maxBody === 0xffff ? whole : decodeAll(stream, [], 0xffff);
    const limits: UdpGatewayLimits = {
      maxStreams: 1,
      maxQueuedBytes: (opts & 2) !== 0 ? 600 : 1 << 20,
      idleTimeoutMs: 1000,
      maxDatagram: maxBody === 512 ? 400 : 65_507,
    };
    const stats = new GatewayStats();
    let toTarget = 0;
    let streamBytes = 0;
    let closes = 0;
    const session = new GatewaySession(
      {
        toTarget: (p) => {
          check(p.length <= limits.maxDatagram, 'a datagram over --max-datagram reached the target');
          toTarget++;
          return true;
        },
        toStream: (b) => {
          streamBytes += b.length;
        },
        streamQueued: () => streamBytes,
        close: () => {
          closes++;
        },
      },
      limits,
      stats,
      0,
    );
    let pos = 0;
    let i = 0;
    while (pos < stream.length && !session.closed) {
      const chunk = stream.subarray(pos, pos + (chunks[i++ % chunks.length] as number));
      pos += chunk.length;
      session.fromStream(chunk, pos);
      session.fromTarget(chunk.subarray(0, 100), pos);
    }
    check(closes === (full.error ? 1 : 0), `the gateway closed ${closes} times for ${full.error?.code ?? 'a good stream'}`);
    check(toTarget + stats.droppedOversized === full.datagrams.length, 'datagrams lost between decoder and target');
    check(streamBytes <= limits.maxQueuedBytes + 1, `the gateway queued ${streamBytes} bytes toward the stream`);
    return `${Math.min(whole.datagrams.length, 8)}:${whole.error?.code ?? 'ok'}:${whole.buffered > 0}:${opts & 3}:${stats.droppedOversized > 0}:${stats.droppedQueueFull > 0}`;
  },
};
