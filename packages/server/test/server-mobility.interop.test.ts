// RFC 8016 mobility against the real `onionturn server` over TCP: an allocation made on one
// connection, that connection dies, a Refresh with the ticket on a new connection takes the
// allocation over, and a UDP peer keeps talking to the same relay address both ways.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttributeType, MessageClass, Method, readAddressAttribute, type TransportAddress } from '@onionturn/protocol';
import { ProcessGroup, startServer, waitFor } from '@onionturn/testkit';

import { CHANNEL, Conn, errorCode, ticketOf, udpPeer } from './mobility-conn.js';

test('a Refresh with the mobility ticket on a new TCP connection keeps the relay address: the UDP peer goes on both ways', async (t) => {
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const server = await startServer(group, ['--user', 'alice:wonderland', '--allow-loopback-peers']);
  const peer = await udpPeer();
  t.after(() => peer.sock.close());
  const peerAddr: TransportAddress = { family: 'IPv4', address: '127.0.0.1', port: peer.port };

  const a = await Conn.open(server.tcp);
  const res = await a.ask(Method.Allocate, (b) =>
    b
      .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
      .add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: Buffer.alloc(0) }),
  );
  assert.equal(res.messageClass, MessageClass.SuccessResponse, `Allocate: ${errorCode(res)}`);
  const relayed = readAddressAttribute(res, AttributeType.XorRelayedAddress);
  assert.ok(relayed);
  const ticket = ticketOf(res);
  const bound = await a.ask(Method.ChannelBind, (b) =>
    b.add(AttributeType.ChannelNumber, { kind: 'channel-number', channel: CHANNEL }).add(AttributeType.XorPeerAddress, { kind: 'address', address: peerAddr }),
  );
  assert.equal(bound.messageClass, MessageClass.SuccessResponse);
  a.sendChannel(Buffer.from('hello from A'));
  await waitFor('the peer to hear A', () => peer.got.length > 0, 3000, 5);
  const relayText = `${relayed.address}:${relayed.port}`;
  assert.equal(peer.got[0]?.from, relayText);

  // A dies (as a Tor stream does); the peer goes on sending into the gap.
  a.sock.destroy();
  await waitFor('A closed', () => a.closed, 3000, 5);
  peer.sock.send(Buffer.from('into the gap'), relayed.port, relayed.address);

  const b = await Conn.open(server.tcp);
  const moved = await b.ask(Method.Refresh, (m) => m.add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: ticket }));
  assert.equal(moved.messageClass, MessageClass.SuccessResponse, `Refresh: ${errorCode(moved)}`);
  assert.notDeepEqual(ticketOf(moved), ticket);

  // Same relay address, same channel, no new permission or ChannelBind: both ways.
  peer.sock.send(Buffer.from('to B'), relayed.port, relayed.address);
  await waitFor('B to hear the peer', () => b.channelData.some((d) => d.toString() === 'to B'), 3000, 5);
  assert.ok(!b.channelData.some((d) => d.toString() === 'into the gap'), 'what came in the gap is dropped, not queued');
  b.sendChannel(Buffer.from('hello from B'));
  await waitFor('the peer to hear B', () => peer.got.some((g) => g.data.toString() === 'hello from B'), 3000, 5);
  assert.equal(peer.got.find((g) => g.data.toString() === 'hello from B')?.from, relayText);

  // The old ticket no longer works.
  const c = await Conn.open(server.tcp);
  assert.equal(errorCode(await c.ask(Method.Refresh, (m) => m.add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: ticket }))), 437);
  c.sock.destroy();
  b.sock.destroy();
});

test('--no-mobility: an Allocate asking for a ticket gets 405 Mobility Forbidden', async (t) => {
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const server = await startServer(group, ['--user', 'alice:wonderland', '--no-mobility']);
  const a = await Conn.open(server.tcp);
  const res = await a.ask(Method.Allocate, (b) =>
    b
      .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
      .add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: Buffer.alloc(0) }),
  );
  assert.equal(errorCode(res), 405);
  a.sock.destroy();
});
