// `onionturn server --workers 2` and RFC 8656 reservations: an Allocate with EVEN-PORT (R bit) on
// one TCP connection gets a RESERVATION-TOKEN; an Allocate with that token on the next connection
// (which the primary hands to the other worker: connections go to the workers in turn) gets the
// reserved odd port. The token was issued by the worker that holds the port; the other one
// claims it through the primary, and the port goes back to its owner when the allocation ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import {
  AttributeType,
  ErrorCode,
  MessageBuilder,
  MessageClass,
  Method,
  StreamFramer,
  decodeMessage,
  longTermKey,
  readAddressAttribute,
  readAttribute,
  readText,
  getAttribute,
  type StunMessage,
} from '@onionturn/protocol';
import { ProcessGroup, startServer, waitFor } from '@onionturn/testkit';

const USER = 'alice';
const PASSWORD = 'wonderland';

/** One TURN-over-TCP connection: requests in, whole answers out. */
class Conn {
  readonly sock: Socket;
  readonly #answers: StunMessage[] = [];
  constructor(port: number) {
    this.sock = connect(port, '127.0.0.1');
    this.sock.on('error', () => undefined);
    const framer = new StreamFramer((f) => {
      const d = decodeMessage(Buffer.from(f));
      if (d.ok) this.#answers.push(d.value);
    });
    this.sock.on('data', (c: Buffer) => framer.push(c));
  }
  async ask(msg: Buffer): Promise<StunMessage> {
    const k = this.#answers.length;
    this.sock.write(msg);
    await waitFor('an answer', () => this.#answers.length > k, 5000, 5);
    return this.#answers[k] as StunMessage;
  }
  /** Allocate with long-term credentials (the 401 first); `extra` adds EVEN-PORT or a token. */
  async allocate(extra: (b: MessageBuilder) => void): Promise<StunMessage> {
    const make = (realm?: string, nonce?: string): Buffer => {
      const b = new MessageBuilder(Method.Allocate, MessageClass.Request).add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 });
      extra(b);
      if (realm === undefined || nonce === undefined) return b.build();
      b.add(AttributeType.Username, { kind: 'text', text: USER })
        .add(AttributeType.Realm, { kind: 'text', text: realm })
        .add(AttributeType.Nonce, { kind: 'text', text: nonce });
      return b.build({ integrityKey: longTermKey(USER, realm, PASSWORD) });
    };
    const challenge = await this.ask(make());
    return this.ask(make(readText(challenge, AttributeType.Realm), readText(challenge, AttributeType.Nonce)));
  }
  close(): void {
    this.sock.destroy();
  }
}

function relayedPort(m: StunMessage): number | undefined {
  const a = readAddressAttribute(m, AttributeType.XorRelayedAddress);
  return a?.port;
}

function errorOf(m: StunMessage): string {
  const e = readAttribute(m, AttributeType.ErrorCode);
  return e?.ok && e.value.kind === 'error-code' ? `${e.value.code} ${e.value.reason}` : 'no error code';
}

test('--workers 2: a RESERVATION-TOKEN works on a connection the other worker holds', async (t) => {
  const group = new ProcessGroup();
  t.after(() => group.stopAll(12_000));
  const server = await startServer(group, ['--user', `${USER}:${PASSWORD}`, '--workers', '2'], {}, { listen: ['tcp://127.0.0.1:0'], startTimeoutMs: 30_000 });
  const conns: Conn[] = [];
  t.after(() => conns.forEach((c) => c.close()));
  // Four pairs, each on two fresh connections in a row: the primary hands them to the workers in
  // turn, so the token is used on the worker that did not issue it.
  for (let pair = 0; pair < 4; pair++) {
    const first = new Conn(server.tcp);
    conns.push(first);
    await once(first.sock, 'connect');
    const even = await first.allocate((b) => b.add(AttributeType.EvenPort, { kind: 'even-port', reserve: true }));
    assert.equal(even.messageClass, MessageClass.SuccessResponse, `pair ${pair}, EVEN-PORT: ${errorOf(even)}`);
    const evenPort = relayedPort(even) as number;
    assert.equal(evenPort % 2, 0);
    const token = getAttribute(even, AttributeType.ReservationToken)?.value;
    assert.ok(token, 'a RESERVATION-TOKEN');
    const second = new Conn(server.tcp);
    conns.push(second);
    await once(second.sock, 'connect');
    const odd = await second.allocate((b) => b.add(AttributeType.ReservationToken, { kind: 'bytes', bytes: token }));
    assert.equal(odd.messageClass, MessageClass.SuccessResponse, `pair ${pair}, RESERVATION-TOKEN: ${errorOf(odd)}`);
    assert.equal(relayedPort(odd), evenPort + 1, 'the reserved odd port');
    // Spent: a second use is refused, on either worker.
    const again = new Conn(server.tcp);
    conns.push(again);
    await once(again.sock, 'connect');
    const refused = await again.allocate((b) => b.add(AttributeType.ReservationToken, { kind: 'bytes', bytes: token }));
    assert.equal(errorOf(refused).split(' ')[0], String(ErrorCode.InsufficientCapacity));
  }
});
