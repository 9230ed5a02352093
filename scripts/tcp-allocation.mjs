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
 * Resolves with `refresh()`: one signed Refresh of the allocation (again with the new nonce after
 * a 438), rejecting when the server refuses it.
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
  const key = longTermKey(username, realm, restPassword(secret, username));
  const build = (nonce) => {
    const b = new MessageBuilder(Method.Allocate, MessageClass.Request).add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 });
    if (nonce === undefined) return b.build();
    b.add(AttributeType.Username, { kind: 'text', text: username })
      .add(AttributeType.Realm, { kind: 'text', text: realm })
      .add(AttributeType.Nonce, { kind: 'text', text: nonce });
    return b.build({ integrityKey: key });
  };
  const refused = (res) => {
    const e = readAttribute(res, AttributeType.ErrorCode);
    return new Error(`refused: ${e?.ok ? `${e.value.code} ${e.value.reason}` : '?'}`);
  };
  sock.write(build());
  let nonce = readText(await next(), AttributeType.Nonce);
  sock.write(build(nonce));
  const res = await next();
  if (res.messageClass !== MessageClass.SuccessResponse) throw refused(res);
  const refreshWith = (n) =>
    new MessageBuilder(Method.Refresh, MessageClass.Request)
      .add(AttributeType.Lifetime, { kind: 'uint32', value: 600 })
      .add(AttributeType.Username, { kind: 'text', text: username })
      .add(AttributeType.Realm, { kind: 'text', text: realm })
      .add(AttributeType.Nonce, { kind: 'text', text: n })
      .build({ integrityKey: key });
  const refresh = async () => {
    for (let attempt = 0; ; attempt++) {
      sock.write(refreshWith(nonce));
      const r = await next();
      if (r.messageClass === MessageClass.SuccessResponse) return;
      const e = readAttribute(r, AttributeType.ErrorCode);
      // 438 Stale Nonce: again with the new one, once.
      if (attempt > 0 || !e?.ok || e.value.code !== 438) throw refused(r);
      nonce = readText(r, AttributeType.Nonce);
    }
  };
  return { refresh };
}
