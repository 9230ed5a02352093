import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { Socks5Error, socks5Connect } from '../src/index.js';

/** A scripted SOCKS5 proxy: records what the client sent, answers with `rep`, then echoes. */
async function fakeProxy(rep: number, method = 0): Promise<{ port: number; received: Buffer[]; close(): void }> {
  const received: Buffer[] = [];
  const conns: Socket[] = [];
  const server = createServer((s) => {
    conns.push(s);
    let stage = 0;
    s.on('data', (d) => {
      received.push(d);
      if (stage === 0) {
        s.write(Buffer.from([5, method]));
        stage = method === 2 ? 1 : 2;
      } else if (stage === 1) {
        s.write(Buffer.from([1, 0]));
        stage = 2;
      } else if (stage === 2) {
        // Reply plus the first application bytes in the same segment.
        s.write(Buffer.concat([Buffer.from([5, rep, 0, 1, 127, 0, 0, 1, 0, 80]), rep === 0 ? Buffer.from('hi') : Buffer.alloc(0)]));
        if (rep !== 0) s.end();
        stage = 3;
      } else {
        s.write(d);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    received,
    close: () => {
      conns.forEach((c) => c.destroy());
      server.close();
    },
  };
}

test('CONNECT with a hostname and username/password sends RFC 1928/1929 bytes', async (t) => {
  const proxy = await fakeProxy(0, 2);
  t.after(() => proxy.close());
  const socket = await socks5Connect({ proxyPort: proxy.port, host: 'abc.onion', port: 4242, username: 'u1', password: 'p' });
  t.after(() => socket.destroy());
  const [first] = (await once(socket, 'data')) as [Buffer];
  assert.equal(first.toString(), 'hi'); // bytes right behind the reply are not lost
  assert.deepEqual([...proxy.received[0]!], [5, 2, 0, 2]);
  assert.deepEqual([...proxy.received[1]!], [1, 2, 0x75, 0x31, 1, 0x70]);
  assert.deepEqual([...proxy.received[2]!], [5, 1, 0, 3, 9, ...Buffer.from('abc.onion'), 0x10, 0x92]);
});

test('CONNECT to IPv4 and IPv6 literals uses the address types', async (t) => {
  for (const [host, bytes] of [
    ['127.0.0.1', [1, 127, 0, 0, 1]],
    ['::1', [4, ...Array<number>(15).fill(0), 1]],
  ] as const) {
    const proxy = await fakeProxy(0);
    t.after(() => proxy.close());
    const socket = await socks5Connect({ proxyPort: proxy.port, host, port: 1 });
    socket.destroy();
    assert.deepEqual([...proxy.received[1]!], [5, 1, 0, ...bytes, 0, 1]);
  }
});

test('a failure reply surfaces its code (Tor uses 0x04 for unreachable onions)', async (t) => {
  const proxy = await fakeProxy(4);
  t.after(() => proxy.close());
  await assert.rejects(socks5Connect({ proxyPort: proxy.port, host: 'x.onion', port: 1 }), (err: unknown) => {
    return err instanceof Socks5Error && err.reply === 4 && /host unreachable/.test(err.message);
  });
});
