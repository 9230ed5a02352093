// Incremental framing of a TURN-over-TCP byte stream (RFC 8656 §12.5): STUN messages and
// ChannelData share the stream. Whole frames are handed out as views of the input chunk when
// they fit in it (no copy); only frames split across chunks are assembled in a buffer of their
// exact size, so memory per connection is bounded by the largest allowed frame.
import { CHANNEL_DATA_HEADER_LENGTH, ChannelNumber, HEADER_LENGTH, MAGIC_COOKIE } from './constants.js';
import { channelDataPadding } from './channel-data.js';
import { WireKind, wireKindOf } from './first-byte.js';

export const FrameKind = { Stun: 0, ChannelData: 1 } as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export interface FramingError {
  readonly code: 'garbage' | 'too-long' | 'bad-channel-number' | 'not-stun';
  readonly reason: string;
}

export interface FramerOptions {
  /** Largest STUN message or ChannelData frame accepted, header included. Default 65535 + 20. */
  readonly maxFrameLength?: number;
  /**
   * Accept channel numbers 0x4000-0x7FFF (RFC 5766) instead of only 0x4000-0x4FFF (RFC 8656).
   * For relays that forward without judging: coturn still hands out channels up to 0x7FFF.
   */
  readonly rfc5766Channels?: boolean;
}

/**
 * Called once per whole frame. STUN frames are the whole message; ChannelData frames are header
 * + data with the TCP padding already removed. The frame is a view of the pushed chunk or a
 * buffer of its own; the framer never writes to it after delivery, so it stays intact as long
 * as the caller does not reuse the chunk it pushed.
 */
export type FrameHandler = (frame: Buffer, kind: FrameKind) => void;

const DEFAULT_MAX = 0xffff + HEADER_LENGTH;

export class StreamFramer {
  readonly #onFrame: FrameHandler;
  readonly #max: number;
  readonly #maxChannel: number;
  /** Made when a header is first split across chunks (rare): a connection costs one buffer less. */
  #head: Buffer | undefined;
  #headHave = 0;
  #partial: Buffer | undefined;
  #partialHave = 0;
  #error: FramingError | undefined;
  /** Set by stop(): push() returns after the frame being delivered, keeping the rest in #rest. */
  #stopped = false;
  #rest: Buffer = Buffer.alloc(0);

  constructor(onFrame: FrameHandler, options: FramerOptions = {}) {
    this.#onFrame = onFrame;
    this.#max = options.maxFrameLength ?? DEFAULT_MAX;
    this.#maxChannel = options.rfc5766Channels ? 0x7fff : ChannelNumber.Max;
  }

  /**
   * A new stream takes over (TURN mobility after a lost Tor stream): the incomplete frame of the
   * old one and any framing error are forgotten; the next push starts at a frame boundary.
   */
  reset(): void {
    this.#head = undefined;
    this.#headHave = 0;
    this.#partial = undefined;
    this.#partialHave = 0;
    this.#error = undefined;
  }

  /**
   * Called from the frame handler when the stream goes elsewhere (a TURN mobility take-over handed
   * to another worker process): push() delivers no frame after this one and returns; rest() then
   * gives the bytes of the pushed chunk that came after it. Later pushes are ignored.
   */
  stop(): void {
    this.#stopped = true;
  }

  /** After stop(): the stream's bytes after the frame that was being delivered (a view of the chunk). */
  rest(): Buffer {
    return this.#rest;
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.#partial ? this.#partialHave : this.#headHave;
  }

  /** The error that stopped the framer, if any. */
  get error(): FramingError | undefined {
    return this.#error;
  }

  /**
   * Feeds a chunk. Returns a FramingError when the stream is not TURN (the caller should close
   * the connection); after that every push returns the same error and emits nothing.
   */
  push(chunk: Buffer): FramingError | undefined {
    if (this.#error) return this.#error;
    if (this.#stopped) return undefined;
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      if (this.#partial) {
        const partial = this.#partial;
        const take = Math.min(partial.length - this.#partialHave, n - pos);
        chunk.copy(partial, this.#partialHave, pos, pos + take);
        this.#partialHave += take;
        pos += take;
        if (this.#partialHave < partial.length) return undefined;
        this.#partial = undefined;
        this.#partialHave = 0;
        const err = this.#deliver(partial);
        if (err) return err;
        if (this.#stopped) return this.#keep(chunk, pos);
        continue;
      }
      if (this.#headHave > 0 || n - pos < CHANNEL_DATA_HEADER_LENGTH) {
        // A frame header split across chunks: collect its 4 bytes first.
        const head = (this.#head ??= Buffer.alloc(CHANNEL_DATA_HEADER_LENGTH));
        const take = Math.min(CHANNEL_DATA_HEADER_LENGTH - this.#headHave, n - pos);
        chunk.copy(head, this.#headHave, pos, pos + take);
        this.#headHave += take;
        pos += take;
        if (this.#headHave < CHANNEL_DATA_HEADER_LENGTH) return undefined;
        const size = this.#frameSize(head, 0);
        if (size < 0) return this.#error;
        this.#headHave = 0;
        this.#partial = Buffer.allocUnsafe(size);
        head.copy(this.#partial, 0);
        this.#partialHave = CHANNEL_DATA_HEADER_LENGTH;
        if (size === CHANNEL_DATA_HEADER_LENGTH) {
          const frame = this.#partial;
          this.#partial = undefined;
          this.#partialHave = 0;
          const err = this.#deliver(frame);
          if (err) return err;
          if (this.#stopped) return this.#keep(chunk, pos);
        }
        continue;
      }
      const size = this.#frameSize(chunk, pos);
      if (size < 0) return this.#error;
      if (pos + size <= n) {
        const err = this.#deliver(chunk.subarray(pos, pos + size));
        if (err) return err;
        pos += size;
        if (this.#stopped) return this.#keep(chunk, pos);
      } else {
        this.#partial = Buffer.allocUnsafe(size);
        chunk.copy(this.#partial, 0, pos, n);
        this.#partialHave = n - pos;
        pos = n;
      }
    }
    return undefined;
  }

  #keep(chunk: Buffer, pos: number): undefined {
    this.#rest = chunk.subarray(pos);
    return undefined;
  }

  /** Size on the wire of the frame whose 4-byte header is at buf[at]; -1 (and #error set) if bad. */
  #frameSize(buf: Buffer, at: number): number {
    const first = buf[at] as number;
    const len = buf.readUInt16BE(at + 2);
    const kind = wireKindOf(first);
    if (kind === WireKind.Stun) {
      if (len % 4 !== 0) return this.#fail('garbage', `STUN length ${len} is not a multiple of 4`);
      const size = HEADER_LENGTH + len;
      if (size > this.#max) return this.#fail('too-long', `STUN message of ${size} bytes is over the limit of ${this.#max}`);
      return size;
    }
    if (kind === WireKind.ChannelData) {
      const channel = buf.readUInt16BE(at);
      if (channel > this.#maxChannel) return this.#fail('bad-channel-number', `channel 0x${channel.toString(16)} is reserved`);
      const size = CHANNEL_DATA_HEADER_LENGTH + len + channelDataPadding(len);
      if (size > this.#max) return this.#fail('too-long', `ChannelData of ${size} bytes is over the limit of ${this.#max}`);
      return size;
    }
    return this.#fail('garbage', `first byte 0x${first.toString(16)} is neither STUN nor ChannelData`);
  }

  #deliver(frame: Buffer): FramingError | undefined {
    if (wireKindOf(frame[0] as number) === WireKind.Stun) {
      if (frame.readUInt32BE(4) !== MAGIC_COOKIE) {
        this.#fail('not-stun', 'STUN message without the magic cookie on a TURN stream');
        return this.#error;
      }
      this.#onFrame(frame, FrameKind.Stun);
    } else {
      this.#onFrame(frame.subarray(0, CHANNEL_DATA_HEADER_LENGTH + frame.readUInt16BE(2)), FrameKind.ChannelData);
    }
    return undefined;
  }

  #fail(code: FramingError['code'], reason: string): -1 {
    this.#error = { code, reason };
    this.#partial = undefined;
    this.#headHave = 0;
    return -1;
  }
}
