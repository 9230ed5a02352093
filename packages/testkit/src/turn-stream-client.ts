// A TURN client's Allocate on a TURN-over-TCP stream the caller opened (through Tor's SOCKS port,
// say), made of our codec: the 401, then the request with a long-term credential (a REST one, as
// tests mint them). For tests that reach a server through Tor and want to know which one answered.
import { once } from 'node:events';
import type { Socket } from 'node:net';
import {
  AttributeType,
  HEADER_LENGTH,
  MessageBuilder,
  MessageClass,
  Method,
  decodeMessage,
  longTermKey,
  readAttribute,
  readText,
  type StunMessage,
} from '@onionturn/protocol';

/** Reads one whole STUN message from a TURN-over-TCP stream. */
export async function readStunMessage(sock: Socket): Promise<StunMessage> {
  let buf = Buffer.alloc(0);
  for (;;) {
    const whole = HEADER_LENGTH + (buf.length >= HEADER_LENGTH ? buf.readUInt16BE(2) : 0);
    if (buf.length >= HEADER_LENGTH && buf.length >= whole) {
      const r = decodeMessage(buf.subarray(0, whole));
      if (!r.ok) throw new Error(r.error.reason);
      return r.value;
    }
    const [chunk] = (await once(sock, 'data')) as [Buffer];
    buf = Buffer.concat([buf, chunk]);
  }
}

/** p, or a rejection after ms; the timer is cleared either way (a pending one keeps a test process alive). */
export async function within<T>(p: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export interface StreamAllocation {
  /** The REALM of the 401 (names the server that answered when each has its own). */
  readonly realm: string;
  /** XOR-RELAYED-ADDRESS. */
  readonly relayed: { readonly address: string; readonly port: number };
}

/**
 * The long-term Allocate handshake (UDP relay) as an app does it, over any transport: `ask` sends
 * one request and resolves with its answer. The unauthenticated request, its 401 (REALM, NONCE),
 * the request with `credential`: the second answer and the realm.
 */
export async function longTermAllocate(
  ask: (request: Buffer) => Promise<StunMessage>,
  credential: { readonly username: string; readonly password: string },
): Promise<{ readonly answer: StunMessage; readonly realm: string }> {
  const transport = { kind: 'requested-transport', protocol: 17 } as const;
  const first = await ask(new MessageBuilder(Method.Allocate, MessageClass.Request).add(AttributeType.RequestedTransport, transport).build());
  const realm = readText(first, AttributeType.Realm) ?? '';
  const nonce = readText(first, AttributeType.Nonce) ?? '';
  const answer = await ask(
    new MessageBuilder(Method.Allocate, MessageClass.Request)
      .add(AttributeType.RequestedTransport, transport)
      .add(AttributeType.Username, { kind: 'text', text: credential.username })
      .add(AttributeType.Realm, { kind: 'text', text: realm })
      .add(AttributeType.Nonce, { kind: 'text', text: nonce })
      .build({ integrityKey: longTermKey(credential.username, realm, credential.password) }),
  );
  return { answer, realm };
}

/** The ERROR-CODE of an answer, if it has one. */
export function errorCodeOf(answer: StunMessage): number | undefined {
  const err = readAttribute(answer, AttributeType.ErrorCode);
  return err?.ok && err.value.kind === 'error-code' ? err.value.code : undefined;
}

/**
 * Allocate (UDP relay) on `sock` with longTermAllocate, each answer within `answerTimeoutMs`.
 * Throws "Allocate failed at REALM: CODE".
 */
export async function allocateOnStream(
  sock: Socket,
  credential: { readonly username: string; readonly password: string },
  answerTimeoutMs = 20_000,
): Promise<StreamAllocation> {
  const ask = (msg: Buffer): Promise<StunMessage> => {
    const reply = readStunMessage(sock);
    sock.write(msg);
    return within(reply, 'TURN answer', answerTimeoutMs);
  };
  const { answer, realm } = await longTermAllocate(ask, credential);
  const relayed = readAttribute(answer, AttributeType.XorRelayedAddress);
  if (!relayed?.ok || relayed.value.kind !== 'address') throw new Error(`Allocate failed at ${realm}: ${errorCodeOf(answer) ?? 'no XOR-RELAYED-ADDRESS'}`);
  return { realm, relayed: { address: relayed.value.address.address, port: relayed.value.address.port } };
}
