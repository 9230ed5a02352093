import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { AttributeType, MessageBuilder, MessageClass, Method, StreamFramer, decodeMessage } from '@onionturn/protocol';
import { parseProbeTarget, probe, targetFromListen } from '../src/commands/probe.js';

/** A TCP server that hands each request to `answer` (undefined: say nothing). */
async function stunServer(answer: (request: Buffer, socket: Socket) => Buffer | undefined): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    const framer = new StreamFramer((frame) => {
      const reply = answer(Buffer.from(frame), socket);
      if (reply) socket.write(reply);
    });
    socket.on('data', (chunk: Buffer) => framer.push(chunk));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0 };
}

function reply(request: Buffer, cls: MessageClass, add: (b: MessageBuilder) => MessageBuilder = (b) => b): Buffer {
  const msg = decodeMessage(request);
  assert.ok(msg.ok);
  return add(new MessageBuilder(Method.Binding, cls, Buffer.from(msg.value.transactionId))).build({ fingerprint: true });
}

test('parseProbeTarget accepts tcp://, tls://, turn: URIs, bare host:port and maps wildcards to loopback', () => {
  assert.deepEqual(parseProbeTarget('tcp://127.0.0.1:3478'), { transport: 'tcp', host: '127.0.0.1', port: 3478 });
  assert.deepEqual(parseProbeTarget('tls://[::1]:5349'), { transport: 'tls', host: '::1', port: 5349 });
  assert.deepEqual(parseProbeTarget('turn:abc.onion:3478?transport=tcp'), { transport: 'tcp', host: 'abc.onion', port: 3478 });
  assert.deepEqual(parseProbeTarget('0.0.0.0:1'), { transport: 'tcp', host: '127.0.0.1', port: 1 });
  assert.deepEqual(parseProbeTarget('tcp://[::]:2'), { transport: 'tcp', host: '::1', port: 2 });
  assert.equal(parseProbeTarget('example.org').port, 3478);
  assert.throws(() => parseProbeTarget('tcp://[nope]:1'), /'nope' in brackets is not an IPv6 address/);
  assert.throws(() => parseProbeTarget('tcp://h:99999'), /cannot parse probe target 'tcp:\/\/h:99999': port in 'h:99999' is not 1-65535/);
  assert.throws(() => parseProbeTarget('http://x/y'), /cannot parse/);
});

test('targetFromListen picks the first TCP or TLS listener', () => {
  assert.deepEqual(targetFromListen('udp://0.0.0.0:3478 tcp://0.0.0.0:3478'), { transport: 'tcp', host: '127.0.0.1', port: 3478 });
  assert.deepEqual(targetFromListen(['udp://127.0.0.1:1', 'tls://127.0.0.1:5349']), { transport: 'tls', host: '127.0.0.1', port: 5349 });
  assert.equal(targetFromListen('udp://127.0.0.1:1'), undefined);
});

test('probe succeeds on a Binding success with XOR-MAPPED-ADDRESS', async (t) => {
  const { server, port } = await stunServer((req, socket) =>
    reply(req, MessageClass.SuccessResponse, (b) =>
      b.add(AttributeType.XorMappedAddress, { kind: 'address', address: { family: 'IPv4', address: '127.0.0.1', port: socket.remotePort ?? 0 } }),
    ),
  );
  t.after(() => server.close());
  const r = await probe({ transport: 'tcp', host: '127.0.0.1', port });
  assert.equal(r.ok, true, JSON.stringify(r));
  if (r.ok) assert.match(r.mapped, /^127\.0\.0\.1:\d+$/);
});

test('probe fails on an error response, a success without address, garbage, a close, silence and refusal', async (t) => {
  const cases: [string, (req: Buffer) => Buffer | undefined, RegExp][] = [
    [
      'error',
      (req) => reply(req, MessageClass.ErrorResponse, (b) => b.add(AttributeType.ErrorCode, { kind: 'error-code', code: 400, reason: 'Bad Request' })),
      /error 400 Bad Request/,
    ],
    ['no address', (req) => reply(req, MessageClass.SuccessResponse), /without XOR-MAPPED-ADDRESS/],
    ['garbage', () => Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'), /not a STUN stream/],
    ['silence', () => undefined, /no answer within 300 ms/],
  ];
  for (const [name, answer, expected] of cases) {
    const { server, port } = await stunServer(answer);
    t.after(() => server.close());
    const r = await probe({ transport: 'tcp', host: '127.0.0.1', port }, { timeoutMs: 300 });
    assert.equal(r.ok, false, name);
    if (!r.ok) assert.match(r.reason, expected, name);
  }
  const closing = createServer((s) => s.end());
  await new Promise<void>((resolve) => closing.listen(0, '127.0.0.1', resolve));
  t.after(() => closing.close());
  const addr = closing.address();
  const closed = await probe({ transport: 'tcp', host: '127.0.0.1', port: typeof addr === 'object' && addr ? addr.port : 0 });
  assert.equal(closed.ok, false);
  if (!closed.ok) assert.match(closed.reason, /closed before an answer/);
  const refused = await probe({ transport: 'tcp', host: '127.0.0.1', port: 1 });
  assert.equal(refused.ok, false);
  if (!refused.ok) assert.match(refused.reason, /ECONNREFUSED/);
});
