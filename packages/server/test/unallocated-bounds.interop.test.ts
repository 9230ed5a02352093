// What a client without an allocation can make the server hold: one byte budget for all such
// connections (half-read frames, unread answers), and a TLS handshake that must finish in time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageBuilder, MessageClass, Method } from '@onionturn/protocol';
import { requireTool, waitFor, type ToolSpec } from '@onionturn/testkit';
import { TurnServer, createLogger, staticUsers } from '../src/index.js';

const OPENSSL: ToolSpec = { command: 'openssl', debianPackage: 'openssl' };

async function open(port: number): Promise<{ sock: Socket; closed: () => boolean }> {
  const sock = connect(port, '127.0.0.1');
  await once(sock, 'connect');
  let closed = false;
  sock.on('close', () => (closed = true));
  sock.on('error', () => undefined);
  return { sock, closed: () => closed };
}

test('connections without an allocation share one byte budget: past it, the one holding more is closed; others are served', async (t) => {
  const budget = 200_000;
  const server = await TurnServer.start({
    listen: [{ protocol: 'tcp', host: '127.0.0.1', port: 0 }],
    realm: 'bounds.test',
    lookup: staticUsers(new Map([['alice', 'pw']])),
    relayPorts: { min: 47000, max: 47099 },
    unallocatedBytes: budget,
    logger: createLogger({ level: 'error' }),
  });
  t.after(() => server.close());
  const port = server.addresses[0]!.port;
  // Each sends the header of a 65,000-byte STUN message and 40,000 bytes of it, then waits.
  const half = Buffer.alloc(20 + 40_000);
  half.writeUInt16BE(0x0001, 0);
  half.writeUInt16BE(65_000, 2);
  half.writeUInt32BE(0x2112a442, 4);
  const conns: { sock: Socket; closed: () => boolean }[] = [];
  for (let i = 0; i < 10; i++) {
    const c = await open(port);
    c.sock.write(half);
    conns.push(c);
  }
  t.after(() => conns.forEach((c) => c.sock.destroy()));
  await waitFor('the server to read every half-frame', () => conns.every((c) => c.closed()) || server.unallocatedBytes >= budget - 40_020, 5000, 20);
  await waitFor('the connections past the budget to be closed', () => conns.filter((c) => c.closed()).length >= 5, 5000, 20);
  const open_ = conns.filter((c) => !c.closed()).length;
  assert.ok(open_ >= 4 && open_ <= 5, `${open_} of 10 held half-frames stay open (budget ${budget} bytes)`);
  assert.ok(server.unallocatedBytes <= budget, `${server.unallocatedBytes} bytes held`);
  // A client whose request arrives whole holds nothing, and is answered.
  const good = await open(port);
  t.after(() => good.sock.destroy());
  const answered = once(good.sock, 'data');
  good.sock.write(new MessageBuilder(Method.Binding, MessageClass.Request).build());
  const [reply] = (await answered) as [Buffer];
  assert.equal(reply.readUInt16BE(0), 0x0101, 'Binding success');
});

test('a TLS handshake that does not finish in time closes the connection', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'onionturn-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    requireTool(OPENSSL),
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', cert],
    { stdio: 'ignore' },
  );
  const server = await TurnServer.start({
    listen: [{ protocol: 'tls', host: '127.0.0.1', port: 0 }],
    realm: 'bounds.test',
    lookup: staticUsers(new Map([['alice', 'pw']])),
    cert,
    key,
    relayPorts: { min: 47100, max: 47199 },
    tlsHandshakeTimeoutMs: 300,
    logger: createLogger({ level: 'error' }),
  });
  t.after(() => server.close());
  const c = await open(server.addresses[0]!.port);
  t.after(() => c.sock.destroy());
  // A ClientHello never comes: the server gives up after the handshake timeout, not Node's 120 s.
  await waitFor('the server to close a silent TLS connection', () => c.closed(), 5000, 20);
});

test('UDP: answers to sources without an allocation are rate limited per address and in total (no reflection)', async (t) => {
  const { createSocket } = await import('node:dgram');
  const server = await TurnServer.start({
    listen: [{ protocol: 'udp', host: '127.0.0.1', port: 0 }],
    realm: 'bounds.test',
    lookup: staticUsers(new Map([['alice', 'pw']])),
    relayPorts: { min: 47200, max: 47299 },
    udpUnauthenticatedRate: { perSource: 1, perSourceBurst: 10, total: 1, totalBurst: 15 },
    logger: createLogger({ level: 'error' }),
  });
  t.after(() => server.close());
  const port = server.addresses[0]!.port;
  const socks = ['127.0.0.1', '127.0.0.2'].map((host) => {
    const s = createSocket('udp4');
    s.bind(0, host);
    return s;
  });
  t.after(() => socks.forEach((s) => s.close()));
  await Promise.all(socks.map((s) => once(s, 'listening')));
  const answers = [0, 0];
  socks.forEach((s, i) => s.on('message', () => answers[i]!++));
  // A 20-byte Allocate gets a ~100-byte 401: 50 of them, from two source addresses (ports vary).
  const allocate = new MessageBuilder(Method.Allocate, MessageClass.Request).build();
  for (let i = 0; i < 50; i++) socks[0]!.send(allocate, port, '127.0.0.1');
  await waitFor('answers to the first source', () => answers[0]! >= 10, 3000, 20);
  for (let i = 0; i < 50; i++) socks[1]!.send(allocate, port, '127.0.0.1');
  await waitFor('answers to the second source', () => answers[1]! >= 5, 3000, 20);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(answers[0]! <= 11, `${answers[0]} answers to one address (burst 10)`);
  assert.ok(answers[1]! <= 6, `${answers[1]} to a second address: what the total (15) left`);
});
