// Two users of one server call each other: each one's peer is the other's relay address, one of
// the server's own addresses. Live relay addresses are reachable and handed over in the process;
// every other port of an own address stays denied.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttributeType, MessageClass, decodeMessage, readAddressAttribute, readAttribute, type StunMessage, type TransportAddress } from '@onionturn/protocol';
import { PeerPolicy, Relay, RelayRegistry, SharedRelays, type RelayBatch } from '../src/index.js';
import { errorCode, peer, world, type TestClient, type World } from './harness.js';

function relayedOf(res: StunMessage): TransportAddress {
  assert.equal(res.messageClass, MessageClass.SuccessResponse);
  const a = readAddressAttribute(res, AttributeType.XorRelayedAddress);
  assert.ok(a);
  return a;
}

function lastData(c: TestClient): { from: TransportAddress | undefined; data: Buffer } {
  const d = decodeMessage(c.link.messages.at(-1)!);
  assert.ok(d.ok);
  const v = readAttribute(d.value, AttributeType.Data);
  assert.ok(v?.ok && v.value.kind === 'bytes');
  return { from: readAddressAttribute(d.value, AttributeType.XorPeerAddress), data: Buffer.from(v.value.bytes) };
}

function twoUsers(w: World): { a: TestClient; b: TestClient; ra: TransportAddress; rb: TransportAddress } {
  const a = w.client();
  const b = w.client({}, 'udp');
  const ra = relayedOf(a.allocate());
  const rb = relayedOf(b.allocate());
  return { a, b, ra, rb };
}

test('relay to relay: the own relay address of a live allocation is a peer (channels both ways), inside the process', () => {
  // The announced relay address (198.51.100.10) is in a denied range and an own address.
  const w = world({ policy: new PeerPolicy({ ownAddresses: ['198.51.100.10'] }) });
  const { a, b, ra, rb } = twoUsers(w);
  assert.equal(ra.address, rb.address);
  assert.equal(readAttribute(a.bind(0x4000, rb), AttributeType.ErrorCode), undefined, 'ChannelBind to the other relay succeeds');
  assert.equal(readAttribute(b.bind(0x4001, ra), AttributeType.ErrorCode), undefined);
  // Each bound a channel to the other's exact relay address, so either may speak first.
  a.channelData(0x4000, Buffer.from('a to b'));
  b.channelData(0x4001, Buffer.from('b to a'));
  a.channelData(0x4000, Buffer.from('a to b again'));
  assert.deepEqual(
    b.link.channelData.map((c) => [c.channel, c.data.toString()]),
    [
      [0x4001, 'a to b'],
      [0x4001, 'a to b again'],
    ],
  );
  assert.deepEqual(
    a.link.channelData.map((c) => [c.channel, c.data.toString()]),
    [[0x4000, 'b to a']],
  );
  for (const r of w.relays) assert.equal(r.sent.length, 0, 'nothing went through a relay socket (the kernel)');
  assert.equal(w.core.stats.packetsToPeer, 3);
  assert.equal(w.core.stats.packetsToClient, 3);
});

test('relay to relay with Send and Data indications; address-and-port filtering still holds', () => {
  const w = world({ policy: new PeerPolicy({ ownAddresses: ['198.51.100.10'] }) });
  const { a, b, ra, rb } = twoUsers(w);
  assert.equal(readAttribute(a.permit(rb), AttributeType.ErrorCode), undefined);
  assert.equal(readAttribute(b.permit(ra), AttributeType.ErrorCode), undefined);
  // B has not sent to A yet: A's first datagram is filtered at B, as from any peer.
  const bBefore = b.link.messages.length;
  a.send(rb, Buffer.from('too early'));
  assert.equal(b.link.messages.length, bBefore);
  assert.equal(w.core.stats.droppedFiltered, 1);
  b.send(ra, Buffer.from('hello a'));
  assert.deepEqual(lastData(a), { from: rb, data: Buffer.from('hello a') });
  a.send(rb, Buffer.from('hello b'));
  assert.deepEqual(lastData(b), { from: ra, data: Buffer.from('hello b') });
  for (const r of w.relays) assert.equal(r.sent.length, 0);
});

test('every other port of an own address stays denied; an ended allocation is never reached through the kernel', () => {
  const w = world({ policy: new PeerPolicy({ ownAddresses: ['198.51.100.10'] }) });
  const { a, b, ra, rb } = twoUsers(w);
  // A port next to B's relay, but not A's own relay (both random: A's, a live relay, is a peer).
  const other = rb.port + 1 === ra.port ? rb.port - 1 : rb.port + 1;
  for (const port of [22, 9050, other]) assert.equal(errorCode(a.permit(peer(rb.address, port))), 403, `port ${port}`);
  assert.equal(errorCode(a.bind(0x4000, peer(rb.address, 22))), 403);
  assert.equal(readAttribute(a.bind(0x4000, rb), AttributeType.ErrorCode), undefined);
  // B leaves: A's channel still exists, but its datagrams go nowhere (not to the kernel).
  w.core.clientClosed(b.client);
  a.channelData(0x4000, Buffer.from('after'));
  for (const r of w.relays) assert.equal(r.sent.length, 0);
  assert.equal(errorCode(a.permit(peer(rb.address, rb.port))), 403, 'a released relay address is no peer any more');
});

test('the registry: IPv4-mapped spellings find the IPv4 relay; removal only of the same relay', () => {
  const reg = new RelayRegistry();
  const w = world();
  const c = w.client();
  c.allocate();
  const relay = w.relays[0]!.relay;
  reg.add(relay);
  const v4 = Buffer.from([198, 51, 100, 10]);
  const mapped = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 10]);
  assert.equal(reg.find(v4, relay.port), relay);
  assert.equal(reg.find(mapped, relay.port), relay);
  assert.equal(reg.find(v4, relay.port + 1), undefined);
  reg.remove(relay);
  assert.equal(reg.size, 0);
});

test('a ChannelBind names the exact peer ip:port: that peer may speak first; other ports stay filtered', () => {
  const w = world();
  const c = w.client();
  c.allocate();
  const relay = w.relays[0]!.relay;
  const p = peer('93.184.216.34', 5000);
  assert.equal(readAttribute(c.bind(0x4000, p), AttributeType.ErrorCode), undefined);
  w.core.handlePeerDatagram(relay, Buffer.from('first'), p.address, p.port);
  assert.deepEqual(
    c.link.channelData.map((d) => d.data.toString()),
    ['first'],
  );
  w.core.handlePeerDatagram(relay, Buffer.from('other port'), p.address, p.port + 1);
  assert.equal(c.link.channelData.length, 1);
  assert.equal(w.core.stats.droppedFiltered, 1);
  // The filter closes like a permission, 300 s after the last bind or send.
  w.clock.now += 301_000;
  c.bind(0x4000, p);
  w.clock.now += 299_000;
  w.core.handlePeerDatagram(relay, Buffer.from('still open'), p.address, p.port);
  assert.equal(c.link.channelData.length, 2);
});

test("another worker's live relay address is a peer too (reached through the kernel); withdrawn, it is denied again", () => {
  const announced: string[] = [];
  // Flushed at once: each change is its own batch here (batching is tested below).
  const relays = new SharedRelays(
    (b) => announced.push(...b.ops),
    (flush) => flush(),
  );
  const w = world({ policy: new PeerPolicy({ ownAddresses: ['198.51.100.10'] }), relays });
  const a = w.client();
  const ra = relayedOf(a.allocate());
  assert.deepEqual(announced, [`+198.51.100.10|${ra.port}`], 'its own relay is announced to the others');
  const other = peer('198.51.100.10', 61000);
  assert.equal(errorCode(a.permit(other)), 403, 'not live anywhere yet');
  relays.apply({ ops: ['+198.51.100.10|61000'] });
  assert.equal(readAttribute(a.bind(0x4000, other), AttributeType.ErrorCode), undefined);
  a.channelData(0x4000, Buffer.from('to the other worker'));
  assert.deepEqual(
    w.relays[0]!.sent.map((s) => [s.address, s.port, s.data.toString()]),
    [['198.51.100.10', 61000, 'to the other worker']],
  );
  relays.apply({ ops: ['-198.51.100.10|61000'] });
  assert.equal(errorCode(a.permit(peer('198.51.100.10', 61000))), 403);
  w.core.clientClosed(a.client);
  assert.deepEqual(announced.at(-1), `-198.51.100.10|${ra.port}`);
});

test("a turn's relay changes go to the other workers as one batch with one ack, in order; each allocation waits for that ack", () => {
  const batches: RelayBatch[] = [];
  const flushes: (() => void)[] = [];
  const relays = new SharedRelays(
    (b) => batches.push(b),
    (flush) => flushes.push(flush),
  );
  const relay = (port: number): Relay => new Relay(undefined as never, 'IPv4', '0.0.0.0', port, { family: 'IPv4', address: '198.51.100.10', port });
  const [r1, r2, r3] = [relay(50001), relay(50002), relay(50003)];
  const answered: number[] = [];
  relays.add(r3); // bound without waiting (no prepare)
  relays.prepare(r1, () => answered.push(1));
  relays.prepare(r2, () => answered.push(2));
  relays.add(r1); // announced by prepare: not again
  relays.remove(r3);
  assert.equal(flushes.length, 1, 'one flush per turn');
  assert.equal(batches.length, 0, 'nothing sent before the turn ends');
  flushes[0]!();
  assert.equal(batches.length, 1);
  assert.deepEqual(batches[0]!.ops, ['+198.51.100.10|50003', '+198.51.100.10|50001', '+198.51.100.10|50002', '-198.51.100.10|50003']);
  assert.equal(typeof batches[0]!.ack, 'number');
  assert.equal(answered.length, 0, 'no answer before the primary acks');
  relays.acked(batches[0]!.ack!);
  assert.deepEqual(answered, [1, 2]);
  // A turn with nothing waiting: no ack asked.
  relays.remove(r1);
  flushes[1]!();
  assert.deepEqual(batches[1], { ops: ['-198.51.100.10|50001'] });
  // Another worker's batch, applied in order: an address that came and went is not live.
  relays.apply({ ops: ['+198.51.100.10|61000', '+198.51.100.10|61001', '-198.51.100.10|61000'] });
  assert.equal(relays.has(Buffer.from([198, 51, 100, 10]), 61000), false);
  assert.equal(relays.has(Buffer.from([198, 51, 100, 10]), 61001), true);
});
