// RFC 8016 mobility against a real `onionturn server --workers 2`: an allocation made on one
// connection; that connection dies (as a Tor stream does) and new connections carry the Refresh
// with the ticket, one after another, so that some reach the other worker (Node's cluster hands
// connections to the workers in turn). Every take-over keeps the relay address and the UDP peer
// talks to the client both ways; the metrics say how many were handed between workers. Then the
// holding worker is killed: its allocations are gone, and a take-over gets 437 wherever it lands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { AttributeType, MessageClass, Method, readAddressAttribute, type TransportAddress } from '@onionturn/protocol';
import { ProcessGroup, freePort, listenerPort, startServer, testTempDir, waitFor, type RunningServer } from '@onionturn/testkit';

import { CHANNEL, Conn, UDP, channelData, errorCode, ticketOf, udpPeer } from './mobility-conn.js';

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
}

function workerPids(server: RunningServer): Map<number, number> {
  const pids = new Map<number, number>();
  for (const line of server.process.output().split('\n')) {
    if (!line.includes('"worker-started"')) continue;
    const e = JSON.parse(line) as { worker: number; pid: number };
    pids.set(e.worker, e.pid);
  }
  return pids;
}

async function allocateMobile(
  server: RunningServer,
  peerAddr: TransportAddress,
  conn?: Conn,
): Promise<{ conn: Conn; relayed: TransportAddress; ticket: Buffer }> {
  conn ??= await Conn.open(server.tcp);
  const res = await conn.ask(Method.Allocate, (b) =>
    b.add(AttributeType.RequestedTransport, UDP).add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: Buffer.alloc(0) }),
  );
  assert.equal(res.messageClass, MessageClass.SuccessResponse, `Allocate: ${errorCode(res)}`);
  const relayed = readAddressAttribute(res, AttributeType.XorRelayedAddress);
  assert.ok(relayed);
  const bound = await conn.ask(Method.ChannelBind, (b) =>
    b.add(AttributeType.ChannelNumber, { kind: 'channel-number', channel: CHANNEL }).add(AttributeType.XorPeerAddress, { kind: 'address', address: peerAddr }),
  );
  assert.equal(bound.messageClass, MessageClass.SuccessResponse);
  return { conn, relayed, ticket: ticketOf(res) };
}

const MOVES = 6;

test('--workers 2: a Refresh with the mobility ticket takes the allocation over on whichever worker the new connection reaches; the UDP peer goes on both ways', async (t) => {
  const group = new ProcessGroup();
  t.after(() => group.stopAll(12_000));
  const metrics = await freePort();
  const server = await startServer(
    group,
    ['--user', 'alice:wonderland', '--allow-loopback-peers', '--workers', '2', '--metrics', `127.0.0.1:${metrics}`],
    {},
    { startTimeoutMs: 30_000 },
  );
  assert.equal(workerPids(server).size, 2, server.process.output());
  const peer = await udpPeer();
  t.after(() => peer.sock.close());
  const peerAddr: TransportAddress = { family: 'IPv4', address: '127.0.0.1', port: peer.port };

  const first = await allocateMobile(server, peerAddr);
  const relayed = first.relayed;
  let { conn, ticket } = first;
  const relayText = `${relayed.address}:${relayed.port}`;
  conn.sendChannel(Buffer.from('hello 0'));
  await waitFor('the peer to hear the client', () => peer.got.some((g) => g.data.toString() === 'hello 0'), 3000, 5);
  assert.equal(peer.got[0]?.from, relayText);

  const took = { handed: [] as number[], same: [] as number[] };
  for (let i = 1; i <= MOVES; i++) {
    // The connection dies; a new one carries the Refresh with the ticket.
    conn.sock.destroy();
    await waitFor('the old connection closed', () => conn.closed, 3000, 5);
    const next = await Conn.open(server.tcp);
    await next.challenge(); // a nonce from the worker this connection reached
    const handedBefore = await metric(metrics, 'onionturn_mobility_handoffs_total');
    // In one write: a Binding (answered where the connection landed), the Refresh, and ChannelData
    // right behind it (read with the Refresh: it must travel with the connection).
    const burst = Buffer.concat([
      next.build(Method.Binding, () => undefined),
      next.build(Method.Refresh, (m) => m.add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: ticket })),
      channelData(Buffer.from(`pipelined ${i}`)),
    ]);
    const start = performance.now();
    const moved = await next.answerTo(Method.Refresh, burst);
    const ms = performance.now() - start;
    assert.equal(moved.messageClass, MessageClass.SuccessResponse, `take-over ${i}: ${errorCode(moved)}`);
    assert.equal(next.messages.find((m) => m.method === Method.Binding)?.messageClass, MessageClass.SuccessResponse, `take-over ${i}: the Binding`);
    await waitFor(`take-over ${i}: the peer to hear what came behind the Refresh`, () => peer.got.some((g) => g.data.toString() === `pipelined ${i}`), 3000, 5);
    ticket = ticketOf(moved);
    const handed = (await metric(metrics, 'onionturn_mobility_handoffs_total')) - handedBefore;
    (handed === 1 ? took.handed : took.same).push(ms);
    conn = next;

    // Same relay address, same channel, no new permission or ChannelBind: both ways.
    peer.sock.send(Buffer.from(`to ${i}`), relayed.port, relayed.address);
    await waitFor(`take-over ${i}: the client to hear the peer`, () => conn.channelData.some((d) => d.toString() === `to ${i}`), 3000, 5);
    conn.sendChannel(Buffer.from(`hello ${i}`));
    await waitFor(`take-over ${i}: the peer to hear the client`, () => peer.got.some((g) => g.data.toString() === `hello ${i}`), 3000, 5);
    assert.equal(peer.got.find((g) => g.data.toString() === `hello ${i}`)?.from, relayText);
  }
  const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(2)).join(', ');
  t.diagnostic(`take-over (Refresh to success) ms: other worker [${fmt(took.handed)}]; same worker [${fmt(took.same)}]`);
  assert.ok(took.handed.length >= 1, 'some new connections reached the other worker');
  assert.ok(took.same.length >= 1, 'some reached the worker holding the allocation');
  assert.equal(await metric(metrics, 'onionturn_mobility_adopted_total'), took.handed.length);
  assert.equal(await metric(metrics, 'onionturn_allocations'), 1, 'still one allocation');
  conn.sock.destroy();
});

test('--workers 2: when the worker holding the allocation dies, a take-over gets 437 wherever it lands (before and after the worker is restarted)', async (t) => {
  const group = new ProcessGroup();
  t.after(() => group.stopAll(12_000));
  const server = await startServer(group, ['--user', 'alice:wonderland', '--allow-loopback-peers', '--workers', '2'], {}, { startTimeoutMs: 30_000 });
  const peer = await udpPeer();
  t.after(() => peer.sock.close());
  const { conn, relayed, ticket } = await allocateMobile(server, { family: 'IPv4', address: '127.0.0.1', port: peer.port });
  // The relay port says which worker holds it: each worker has its half of the range.
  const half = Math.floor((server.relayPorts.max - server.relayPorts.min + 1) / 2);
  const holder = relayed.port < server.relayPorts.min + half ? 0 : 1;
  const pid = workerPids(server).get(holder);
  assert.ok(pid);
  process.kill(pid, 'SIGKILL');
  await waitFor('the client connection to close with its worker', () => conn.closed, 5000, 5);
  const takeOvers = async (label: string): Promise<void> => {
    for (let i = 0; i < 4; i++) {
      const next = await Conn.open(server.tcp);
      const r = await next.ask(Method.Refresh, (m) => m.add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: ticket }));
      assert.equal(errorCode(r), 437, `${label}, connection ${i}`);
      next.sock.destroy();
    }
  };
  await takeOvers('before the restart');
  await waitFor('the worker to be restarted', () => server.process.output().includes('"worker-restarted"'), 20_000);
  await takeOvers('after the restart');
});

test('--workers 2 over TLS: a take-over on the worker holding the allocation works; one reaching the other worker gets 437 (a TLS session cannot move), and the ticket still works', async (t) => {
  const dir = testTempDir(t);
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1', '-keyout', key, '-out', cert], {
    stdio: 'ignore',
  });
  const group = new ProcessGroup();
  t.after(() => group.stopAll(12_000));
  const metrics = await freePort();
  const server = await startServer(
    group,
    ['--user', 'alice:wonderland', '--allow-loopback-peers', '--workers', '2', '--cert', cert, '--key', key, '--metrics', `127.0.0.1:${metrics}`],
    {},
    { listen: ['tls://127.0.0.1:0'], startTimeoutMs: 30_000 },
  );
  const port = listenerPort(server, 'tls', '127.0.0.1');
  const peer = await udpPeer();
  t.after(() => peer.sock.close());
  let { conn, ticket } = await allocateMobile(server, { family: 'IPv4', address: '127.0.0.1', port: peer.port }, await Conn.openTls(port));
  const outcomes: number[] = [];
  for (let i = 0; i < 6; i++) {
    conn.sock.destroy();
    const next = await Conn.openTls(port);
    const r = await next.ask(Method.Refresh, (m) => m.add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: ticket }));
    outcomes.push(errorCode(r));
    if (errorCode(r) === 0) ticket = ticketOf(r);
    else assert.equal(errorCode(r), 437, `take-over ${i}`);
    conn = next;
  }
  assert.ok(outcomes.includes(0) && outcomes.includes(437), `outcomes ${outcomes.join(',')}`);
  assert.equal(await metric(metrics, 'onionturn_mobility_handoffs_total'), 0, 'no TLS connection handed over');
  conn.sock.destroy();
});
