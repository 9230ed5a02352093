// A minimal STUN/TURN app for tests, made of our codec: single requests over UDP or TCP to the
// shim, and the long-term Allocate handshake. Loopback only.
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { AttributeType, FrameKind, HEADER_LENGTH, StreamFramer, decodeMessage, readText, type StunMessage } from '@onionturn/protocol';
import { errorCodeOf, longTermAllocate, within } from '@onionturn/testkit';

function decoded(data: Buffer): StunMessage {
  const r = decodeMessage(data);
  if (!r.ok) throw new Error(r.error.reason);
  return r.value;
}

/** The whole STUN messages in a recorded direction of a TURN-over-TCP stream (the codec's framer). */
export function messagesIn(chunks: readonly Buffer[]): StunMessage[] {
  const out: StunMessage[] = [];
  const framer = new StreamFramer((frame, kind) => {
    const m = kind === FrameKind.Stun ? decodeMessage(Buffer.from(frame)) : undefined;
    if (m?.ok) out.push(m.value);
  });
  for (const c of chunks) framer.push(c);
  return out;
}

/** An answer within 5 s (testkit's within: its timer is cleared once answered). */
const ANSWER_MS = 5000;

/** Sends one STUN message over UDP from a fresh socket; its answer and the socket's own port. */
export async function stunOverUdp(port: number, msg: Buffer): Promise<{ answer: StunMessage; localPort: number }> {
  const sock = createSocket('udp4');
  try {
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
    const reply = once(sock, 'message') as Promise<[Buffer]>;
    sock.send(msg, port, '127.0.0.1');
    const [data] = await within(reply, 'STUN answer over UDP', ANSWER_MS);
    return { answer: decoded(data), localPort: sock.address().port };
  } finally {
    sock.close();
  }
}

/** Reads one whole STUN message from a TURN-over-TCP stream. */
async function readStun(sock: Socket): Promise<Buffer> {
  let buf = Buffer.alloc(0);
  for (;;) {
    if (buf.length >= HEADER_LENGTH && buf.length >= HEADER_LENGTH + buf.readUInt16BE(2)) return buf.subarray(0, HEADER_LENGTH + buf.readUInt16BE(2));
    const [chunk] = (await once(sock, 'data')) as [Buffer];
    buf = Buffer.concat([buf, chunk]);
  }
}

/** Sends one STUN message on a new TCP connection; its answer and the connection's own port. */
export async function stunOverTcp(port: number, msg: Buffer): Promise<{ answer: StunMessage; localPort: number }> {
  const sock = connect({ host: '127.0.0.1', port });
  try {
    await within(once(sock, 'connect'), 'TCP connection', ANSWER_MS);
    sock.write(msg);
    const data = await within(readStun(sock), 'STUN answer over TCP', ANSWER_MS);
    return { answer: decoded(data), localPort: sock.localPort as number };
  } finally {
    sock.destroy();
  }
}

/** The long-term handshake over UDP as an app does it: Allocate, 401, Allocate with integrity. */
export async function allocateWith(port: number, username: string, password: string): Promise<{ code: number | undefined; realm: string | undefined }> {
  const sock = createSocket('udp4');
  const ask = async (msg: Buffer): Promise<StunMessage> => {
    const reply = once(sock, 'message') as Promise<[Buffer]>;
    sock.send(msg, port, '127.0.0.1');
    const [data] = await within(reply, 'STUN answer from the shim', ANSWER_MS);
    return decoded(data);
  };
  try {
    const { answer } = await longTermAllocate(ask, { username, password });
    return { code: errorCodeOf(answer), realm: readText(answer, AttributeType.Realm) };
  } finally {
    sock.close();
  }
}
