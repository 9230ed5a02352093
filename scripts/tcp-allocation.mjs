// One TURN-over-TCP connection with one allocation made with a REST credential (401, then the
// signed Allocate), for the benchmarks that measure what an allocation costs a server
// (bench-server.mjs's held allocations, bench-alloc-split.mjs). Needs the workspace built.
import { once } from 'node:events';
import { connect } from 'node:net';
import { restPassword } from '@onionturn/credentials';
import { AttributeType, MessageBuilder, MessageClass, Method, StreamFramer, decodeMessage, longTermKey, readAttribute, readText } from '@onionturn/protocol';

/**
 * Connects to 127.0.0.1:`port`, allocates as `username` (REST: expiry:tag), and leaves the socket
 * open in `sockets` (pushed as soon as it connects, so a failure still leaves it to be closed).
 * Rejects with the error code when the server refuses, or after `timeoutMs` without a reply.
 */
export async function tcpAllocation({ port, realm, secret, username, sockets, timeoutMs = 10_000 }) {
  const sock = connect(port, '127.0.0.1');
  sock.on('error', () => undefined);
  await once(sock, 'connect');
  sockets.push(sock);
  const replies = [];
  let wake = () => undefined;
  const framer = new StreamFramer((f) => {
    const d = decodeMessage(Buffer.from(f));
    if (d.ok) replies.push(d.value);
    wake();
  });
  sock.on('data', (c) => framer.push(c));
  const next = async () => {
    const k = replies.length;
    const deadline = Date.now() + timeoutMs;
    while (replies.length <= k) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms`);
      await new Promise((r) => {
        const t = setTimeout(r, left);
        wake = () => (clearTimeout(t), r());
      });
    }
    return replies[k];
  };
  const build = (nonce) => {
    const b = new MessageBuilder(Method.Allocate, MessageClass.Request).add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 });
    if (nonce === undefined) return b.build();
    b.add(AttributeType.Username, { kind: 'text', text: username })
      .add(AttributeType.Realm, { kind: 'text', text: realm })
      .add(AttributeType.Nonce, { kind: 'text', text: nonce });
    return b.build({ integrityKey: longTermKey(username, realm, restPassword(secret, username)) });
  };
  sock.write(build());
  sock.write(build(readText(await next(), AttributeType.Nonce)));
  const res = await next();
  if (res.messageClass !== MessageClass.SuccessResponse) {
    const e = readAttribute(res, AttributeType.ErrorCode);
    throw new Error(`refused: ${e?.ok ? `${e.value.code} ${e.value.reason}` : '?'}`);
  }
}
