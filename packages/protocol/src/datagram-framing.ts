// Datagrams on a byte stream (a Tor stream to a datagram onion service, issue 15): RFC 4571
// framing (a 16-bit length per datagram) behind a version byte and a per-frame type byte.
//
//   stream   = VERSION(1 byte) *frame            each direction starts with its version byte
//   frame    = TYPE(1 byte) LENGTH(u16, big-endian) BODY(LENGTH bytes)
//   TYPE 0   = one datagram, BODY its payload (0-65535 bytes; an empty datagram is a datagram)
//
// Why this and not the TURN server as the gateway: the first datagram leaves with the stream's
// first bytes, with no Allocate/CreatePermission/ChannelBind round trips (each ~2x the RTT of an
// onion path, i.e. seconds), no credentials or nonces to keep, and a parser of three bytes per
// frame is a tiny attack surface on the onion host. Room for the future: the client offers the
// highest version it speaks and the gateway answers the version both will use (the lower one),
// so version 2 can add control frames (types 1-255, e.g. timestamps for the shim-server delay
// extension) without breaking version-1 peers. Version 1 knows only TYPE 0: any other type is
// a framing error, as is a frame longer than the receiver's limit.
//
// Pure: bytes in, frames and errors (as values) out. The decoder holds at most one frame.

/** The version this code speaks (the highest it offers or accepts). */
export const DATAGRAM_FRAMING_VERSION = 1;
export const DatagramFrameType = { Datagram: 0x00 } as const;
/** TYPE + LENGTH. */
export const DATAGRAM_FRAME_HEADER_LENGTH = 3;
/** The largest BODY the 16-bit length can say. */
export const MAX_DATAGRAM_FRAME_BODY = 0xffff;

export interface DatagramFramingError {
  readonly code: 'bad-version' | 'bad-type' | 'too-long';
  readonly reason: string;
}

export interface DatagramDecoderOptions {
  /** Versions accepted in the peer's version byte (default 1..1). The gateway accepts any >= 1. */
  readonly minVersion?: number;
  readonly maxVersion?: number;
  /** Largest datagram accepted; a longer frame is an error (default 65535). */
  readonly maxBody?: number;
}

export interface DatagramDecoderHandler {
  /** The peer's version byte, once, before any frame. */
  onVersion?(version: number): void;
  /**
   * One datagram: a view of the pushed chunk when it fits in it, else a buffer of its own; never
   * written after delivery.
   */
  onDatagram(payload: Buffer): void;
}

/** Encodes the version byte that starts each direction of a stream. */
export function encodeDatagramPreamble(version: number = DATAGRAM_FRAMING_VERSION): Buffer {
  return Buffer.from([version & 0xff]);
}

/** The version both sides use: the lower of the two offers. */
export function negotiatedDatagramVersion(offered: number): number {
  return Math.min(offered, DATAGRAM_FRAMING_VERSION);
}

/** Writes a datagram frame header at `at`; returns the offset after it. */
export function writeDatagramFrameHeader(buf: Buffer, at: number, bodyLength: number, type: number = DatagramFrameType.Datagram): number {
  buf[at] = type;
  buf.writeUInt16BE(bodyLength, at + 1);
  return at + DATAGRAM_FRAME_HEADER_LENGTH;
}

/**
 * One datagram as a frame, or undefined when it is too long for the 16-bit length (the caller
 * drops it and counts).
 */
export function encodeDatagramFrame(payload: Buffer): Buffer | undefined {
  if (payload.length > MAX_DATAGRAM_FRAME_BODY) return undefined;
  const out = Buffer.allocUnsafe(DATAGRAM_FRAME_HEADER_LENGTH + payload.length);
  payload.copy(out, writeDatagramFrameHeader(out, 0, payload.length));
  return out;
}

/**
 * Incremental decoder of one direction of a stream: the version byte, then frames. After an
 * error every push returns the same error and delivers nothing (the caller closes the stream).
 */
export class DatagramFrameDecoder {
  readonly #handler: DatagramDecoderHandler;
  readonly #minVersion: number;
  readonly #maxVersion: number;
  readonly #maxBody: number;
  #version = 0;
  readonly #head = Buffer.alloc(DATAGRAM_FRAME_HEADER_LENGTH);
  #headHave = 0;
  #body: Buffer | undefined;
  #bodyHave = 0;
  #error: DatagramFramingError | undefined;

  constructor(handler: DatagramDecoderHandler, options: DatagramDecoderOptions = {}) {
    this.#handler = handler;
    this.#minVersion = options.minVersion ?? DATAGRAM_FRAMING_VERSION;
    this.#maxVersion = options.maxVersion ?? DATAGRAM_FRAMING_VERSION;
    this.#maxBody = Math.min(options.maxBody ?? MAX_DATAGRAM_FRAME_BODY, MAX_DATAGRAM_FRAME_BODY);
  }

  /** The peer's version, 0 until its byte arrived. */
  get version(): number {
    return this.#version;
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.#body ? DATAGRAM_FRAME_HEADER_LENGTH + this.#bodyHave : this.#headHave;
  }

  get error(): DatagramFramingError | undefined {
    return this.#error;
  }

  push(chunk: Buffer): DatagramFramingError | undefined {
    if (this.#error) return this.#error;
    let pos = 0;
    const n = chunk.length;
    if (this.#version === 0 && n > 0) {
      const v = chunk[0] as number;
      if (v < this.#minVersion || v > this.#maxVersion) {
        return this.#fail('bad-version', `framing version ${v} is not one of ${this.#minVersion}-${this.#maxVersion}`);
      }
      this.#version = v;
      this.#handler.onVersion?.(v);
      pos = 1;
    }
    while (pos < n) {
      const body = this.#body;
      if (body) {
        const take = Math.min(body.length - this.#bodyHave, n - pos);
        chunk.copy(body, this.#bodyHave, pos, pos + take);
        this.#bodyHave += take;
        pos += take;
        if (this.#bodyHave < body.length) return undefined;
        this.#body = undefined;
        this.#bodyHave = 0;
        this.#handler.onDatagram(body);
        if (this.#error) return this.#error;
        continue;
      }
      let len: number;
      if (this.#headHave === 0 && n - pos >= DATAGRAM_FRAME_HEADER_LENGTH) {
        if (this.#badType(chunk[pos] as number)) return this.#error;
        len = chunk.readUInt16BE(pos + 1);
        pos += DATAGRAM_FRAME_HEADER_LENGTH;
      } else {
        // A header split across chunks (rare).
        const take = Math.min(DATAGRAM_FRAME_HEADER_LENGTH - this.#headHave, n - pos);
        chunk.copy(this.#head, this.#headHave, pos, pos + take);
        this.#headHave += take;
        pos += take;
        if (this.#headHave < DATAGRAM_FRAME_HEADER_LENGTH) {
          if (this.#headHave >= 1 && this.#badType(this.#head[0] as number)) return this.#error;
          return undefined;
        }
        this.#headHave = 0;
        if (this.#badType(this.#head[0] as number)) return this.#error;
        len = this.#head.readUInt16BE(1);
      }
      if (len > this.#maxBody) return this.#fail('too-long', `a datagram of ${len} bytes is over the limit of ${this.#maxBody}`);
      if (pos + len <= n) {
        this.#handler.onDatagram(chunk.subarray(pos, pos + len));
        pos += len;
      } else {
        const b = Buffer.allocUnsafe(len);
        chunk.copy(b, 0, pos, n);
        this.#body = b;
        this.#bodyHave = n - pos;
        pos = n;
      }
    }
    return undefined;
  }

  #badType(type: number): boolean {
    if (type === DatagramFrameType.Datagram) return false;
    this.#fail('bad-type', `frame type ${type} is not known in framing version ${this.#version}`);
    return true;
  }

  #fail(code: DatagramFramingError['code'], reason: string): DatagramFramingError {
    const e = { code, reason };
    this.#error = e;
    this.#body = undefined;
    this.#headHave = 0;
    return e;
  }
}
