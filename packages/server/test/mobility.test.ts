// RFC 8016 mobility in the core (no sockets): tickets at Allocate, a Refresh with the ticket from
// a new connection taking the allocation over (relay, permissions, channels kept), and the errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttributeType, ErrorCode, MessageClass, Method, getAttribute, readAddressAttribute, readUint32, type StunMessage } from '@onionturn/protocol';
import { FakeLink, TestClient, errorCode, peer, world } from './harness.js';
import { MobilityTickets } from '../src/mobility-tickets.js';

const PEER = peer('93.184.216.34', 5000);
const UDP = [AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }] as const;
const ASK = [AttributeType.MobilityTicket, { kind: 'bytes', bytes: Buffer.alloc(0) }] as const;
const KEY = Buffer.alloc(32, 7);

function ticketOf(m: StunMessage): Buffer {
  const t = getAttribute(m, AttributeType.MobilityTicket);
  assert.ok(t, 'no MOBILITY-TICKET in the response');
  return Buffer.from(t.value);
}

function refreshWith(c: TestClient, ticket: Buffer, lifetime?: number): StunMessage {
  const attrs = [[AttributeType.MobilityTicket, { kind: 'bytes', bytes: ticket }] as const] as const;
  return c.request(Method.Refresh, lifetime === undefined ? attrs : [...attrs, [AttributeType.Lifetime, { kind: 'uint32', value: lifetime }] as const]);
}

test('an Allocate with an empty MOBILITY-TICKET gets an opaque ticket; a plain Allocate gets none', () => {
  const w = world({ mobilityKey: KEY });
  const a = w.client().allocate([UDP, ASK]);
  assert.equal(a.messageClass, MessageClass.SuccessResponse);
  const ticket = ticketOf(a);
  assert.ok(ticket.length >= 16);
  const plain = w.client().allocate([UDP]);
  assert.equal(plain.messageClass, MessageClass.SuccessResponse);
  assert.equal(getAttribute(plain, AttributeType.MobilityTicket), undefined);
});

test('a Refresh with the ticket from a new connection takes the allocation over: same relay, permissions and channels', () => {
  const w = world({ mobilityKey: KEY });
  const a = w.client({ port: 1111 });
  const res = a.allocate([UDP, ASK]);
  const relayed = readAddressAttribute(res, AttributeType.XorRelayedAddress);
  assert.equal(a.bind(0x4001, PEER).messageClass, MessageClass.SuccessResponse);
  const relay = w.relays[0]!.relay;

  const b = w.client({ address: '192.0.2.99', port: 2222 });
  const moved = refreshWith(b, ticketOf(res));
  assert.equal(moved.messageClass, MessageClass.SuccessResponse, `got ${errorCode(moved)}`);
  assert.equal(readUint32(moved, AttributeType.Lifetime), 600);
  const fresh = ticketOf(moved);
  assert.notDeepEqual(fresh, ticketOf(res));
  assert.equal(w.core.allocationCount, 1);
  assert.equal(b.client.allocation, relay.allocation);
  assert.equal(a.client.allocation, undefined);
  assert.deepEqual(a.link.holding, ['allocated', 'released']);
  assert.deepEqual(b.link.holding, ['allocated']);

  // The peer's datagram reaches B on the channel A bound; B's ChannelData reaches the peer.
  w.core.handlePeerDatagram(relay, Buffer.from('to-b'), PEER.address, PEER.port);
  assert.deepEqual(b.link.channelData.at(-1), { channel: 0x4001, data: Buffer.from('to-b') });
  assert.equal(a.link.channelData.length, 0);
  b.channelData(0x4001, Buffer.from('from-b'));
  assert.deepEqual(w.relays[0]!.sent.at(-1)?.data, Buffer.from('from-b'));
  assert.deepEqual(readAddressAttribute(res, AttributeType.XorRelayedAddress), relayed);

  // A closing now frees nothing; A's requests no longer reach the allocation.
  w.core.clientClosed(a.client);
  assert.equal(w.core.allocationCount, 1);
  assert.equal(w.relays[0]!.closed, false);
});

test('the old ticket is stale after a move (437); a forged or damaged one is 400; another user 441', () => {
  const w = world({ mobilityKey: KEY, users: { alice: 'wonderland', bob: 'builder' } });
  const res = w.client().allocate([UDP, ASK]);
  const first = ticketOf(res);
  const b = w.client();
  const second = ticketOf(refreshWith(b, first));
  // B uses its new connection: it has the new ticket.
  assert.equal(b.request(Method.Binding).messageClass, MessageClass.SuccessResponse);

  assert.equal(errorCode(refreshWith(w.client(), first)), ErrorCode.AllocationMismatch);
  const damaged = Buffer.from(second);
  damaged[damaged.length - 1]! ^= 1;
  assert.equal(errorCode(refreshWith(w.client(), damaged)), ErrorCode.BadRequest);
  assert.equal(errorCode(refreshWith(w.client(), Buffer.alloc(0))), ErrorCode.BadRequest);
  // A ticket of another server (another key, as after a restart) is not this server's.
  const other = world({ mobilityKey: Buffer.alloc(32, 9) });
  const foreign = ticketOf(other.client().allocate([UDP, ASK]));
  assert.equal(errorCode(refreshWith(w.client(), foreign)), ErrorCode.BadRequest);

  const bob = w.client();
  bob.username = 'bob';
  bob.password = 'builder';
  assert.equal(errorCode(refreshWith(bob, second)), ErrorCode.WrongCredentials);
  assert.equal(b.client.allocation?.deleted, false);
  // Still B's, with the ticket B holds.
  assert.equal(refreshWith(w.client(), second).messageClass, MessageClass.SuccessResponse);
});

test('a take-over whose answer may have died: the ticket before works while the new holder is closed or has sent nothing, not once it has', () => {
  const w = world({ mobilityKey: KEY });
  const t1 = ticketOf(w.client().allocate([UDP, ASK]));
  const b = w.client();
  const t2 = ticketOf(refreshWith(b, t1));
  // B is open and has sent nothing since: its client may never have seen t2 (a stream its tor
  // gave up on stays open at the exit), and tries again on another connection with t1.
  const c = w.client();
  const t3 = ticketOf(refreshWith(c, t1));
  assert.equal(c.client.allocation?.deleted, false, 'C holds it now, with t1');
  assert.equal(b.client.allocation, undefined);
  assert.notDeepEqual(t3, t2);
  // C sends something: it has t3, and the tickets before are dead while C is open.
  assert.equal(c.request(Method.Binding).messageClass, MessageClass.SuccessResponse);
  assert.equal(errorCode(refreshWith(w.client(), t2)), ErrorCode.AllocationMismatch, 'C has used t3: t2, one behind, does not work');
  assert.equal(errorCode(refreshWith(w.client(), t1)), ErrorCode.AllocationMismatch);
  // C's connection closes: the answer may have died with it, so t2 works again.
  w.core.clientClosed(c.client);
  const d = w.client();
  ticketOf(refreshWith(d, t2));
  assert.equal(d.client.allocation?.deleted, false, 'D holds it now, with t2');
  // ChannelData counts as sending something too.
  d.channelData(0x4001, Buffer.from('x'));
  assert.equal(errorCode(refreshWith(w.client(), t3)), ErrorCode.AllocationMismatch, 'D has used t4: t3 does not work');
});

test('a ticket of a deleted allocation gets 437; its own connection renews the ticket; lifetime 0 deletes after a move', () => {
  const w = world({ mobilityKey: KEY });
  const a = w.client();
  const t1 = ticketOf(a.allocate([UDP, ASK]));
  const t2 = ticketOf(refreshWith(a, t1));
  assert.equal(errorCode(refreshWith(w.client(), t1)), ErrorCode.AllocationMismatch);
  const gone = refreshWith(w.client(), t2, 0);
  assert.equal(gone.messageClass, MessageClass.SuccessResponse);
  assert.equal(w.core.allocationCount, 0);
  assert.equal(errorCode(refreshWith(w.client(), t2)), ErrorCode.AllocationMismatch);
});

test('a connection that already holds an allocation keeps it: another ticket is not a second allocation', () => {
  const w = world({ mobilityKey: KEY });
  const t = ticketOf(w.client().allocate([UDP, ASK]));
  const b = w.client();
  b.allocate([UDP]);
  const own = b.client.allocation;
  const res = refreshWith(b, t);
  assert.equal(res.messageClass, MessageClass.SuccessResponse);
  assert.equal(getAttribute(res, AttributeType.MobilityTicket), undefined); // b did not ask at Allocate
  assert.equal(b.client.allocation, own);
  assert.equal(w.core.allocationCount, 2);
});

test('mobility off: an Allocate asking for it gets 405, a Refresh with a ticket 405, plain clients are served', () => {
  const w = world({ mobility: false });
  assert.equal(errorCode(w.client().allocate([UDP, ASK])), ErrorCode.MobilityForbidden);
  assert.equal(errorCode(refreshWith(w.client(), Buffer.alloc(36))), ErrorCode.MobilityForbidden);
  assert.equal(w.client().allocate([UDP]).messageClass, MessageClass.SuccessResponse);
});

test('a Refresh without a ticket from a connection without an allocation is still 437', () => {
  const w = world({ mobilityKey: KEY });
  w.client().allocate([UDP, ASK]);
  assert.equal(errorCode(w.client().request(Method.Refresh, [])), ErrorCode.AllocationMismatch);
});

test('a mobile allocation outlives its closed connection for the grace time, dropping what peers send meanwhile', () => {
  const w = world({ mobilityKey: KEY });
  const a = w.client();
  const res = a.allocate([UDP, ASK]);
  a.bind(0x4002, PEER);
  const relay = w.relays[0]!.relay;
  w.core.clientClosed(a.client);
  assert.equal(w.core.allocationCount, 1);
  w.core.handlePeerDatagram(relay, Buffer.from('lost'), PEER.address, PEER.port);
  assert.equal(w.core.stats.droppedDetached, 1);
  assert.equal(a.link.channelData.length, 0);
  w.clock.now += 30_000;
  w.core.tick();
  const b = w.client();
  const moved = refreshWith(b, ticketOf(res));
  assert.equal(moved.messageClass, MessageClass.SuccessResponse, `got ${errorCode(moved)}`);
  w.core.handlePeerDatagram(relay, Buffer.from('back'), PEER.address, PEER.port);
  assert.deepEqual(b.link.channelData.at(-1), { channel: 0x4002, data: Buffer.from('back') });
  // The Refresh gave it a full lifetime again.
  w.clock.now += 120_000;
  w.core.tick();
  assert.equal(w.core.allocationCount, 1);
});

test('nobody takes it over: deleted after the grace time; a plain allocation is deleted with its connection', () => {
  const w = world({ mobilityKey: KEY });
  const a = w.client();
  a.allocate([UDP, ASK]);
  const plain = w.client();
  plain.allocate([UDP]);
  assert.equal(w.core.allocationCount, 2);
  w.core.clientClosed(plain.client);
  assert.equal(w.core.allocationCount, 1);
  w.core.clientClosed(a.client);
  w.clock.now += 59_000;
  w.core.tick();
  assert.equal(w.core.allocationCount, 1);
  w.clock.now += 2_000;
  w.core.tick();
  assert.equal(w.core.allocationCount, 0);
  assert.equal(w.relays[0]!.closed, true);
});

// --workers: cores sharing the ticket key and the nonce key, each with its own worker index.
const SHARED = { mobilityKey: KEY, nonceSecret: Buffer.alloc(32, 3), nonceOrigin: -12345 };

/** A FakeLink that can hand its connection to another worker, answering `result`. */
class MovableLink extends FakeLink {
  readonly handed: { worker: number; frame: Buffer }[] = [];
  constructor(readonly result: 'handed' | 'busy' | 'gone') {
    super();
  }
  handOff(worker: number, frame: Buffer): 'handed' | 'busy' | 'gone' {
    this.handed.push({ worker, frame: Buffer.from(frame) });
    return this.result;
  }
}

function movable(w: ReturnType<typeof world>, result: 'handed' | 'busy' | 'gone'): TestClient & { link: MovableLink } {
  const c = w.client();
  const link = new MovableLink(result);
  (c.client as { link: unknown }).link = link;
  return new TestClient(w.core, c.client, link) as TestClient & { link: MovableLink };
}

test('tickets name their worker and its life: route says here, another worker, or unknown', () => {
  const zero = new MobilityTickets(KEY, { worker: 0, incarnation: 1 });
  const one = new MobilityTickets(KEY, { worker: 1, incarnation: 2 });
  const t = zero.issue(7, 3);
  assert.deepEqual(one.open(t), { worker: 0, incarnation: 1, allocationId: 7, generation: 3 });
  assert.equal(zero.route(t), 'here');
  assert.equal(one.route(t), 0);
  assert.equal(one.route(Buffer.alloc(t.length)), 'unknown');
  assert.equal(new MobilityTickets(Buffer.alloc(32, 1), { worker: 1, incarnation: 2 }).route(t), 'unknown');
  // Two workers' first tickets for the same allocation id differ (the nonce holds the incarnation).
  assert.notDeepEqual(one.issue(7, 3).subarray(0, 12), t.subarray(0, 12));
});

test("a Refresh with another worker's ticket on a connection holding nothing is handed to that worker as it came, before any credential check; there it takes the allocation over, with a nonce the first worker gave", () => {
  const zero = world({ ...SHARED, ticketIssuer: { worker: 0, incarnation: 1 } });
  const one = world({ ...SHARED, ticketIssuer: { worker: 1, incarnation: 2 } });
  const a = zero.client();
  const ticket = ticketOf(a.allocate([UDP, ASK]));
  zero.core.clientClosed(a.client);

  // The new connection reached worker 1 and got its nonce there (401 to a first request).
  const b = movable(one, 'handed');
  b.challenge();
  const request = b.build(Method.Refresh, [[AttributeType.MobilityTicket, { kind: 'bytes', bytes: ticket }]], true);
  assert.equal(b.raw(request), undefined, 'nothing answered on the worker that got it');
  assert.equal(b.link.handed.length, 1);
  assert.equal(b.link.handed[0]!.worker, 0);
  assert.deepEqual(b.link.handed[0]!.frame, request);
  assert.equal(one.core.stats.handedOff, 1);

  // Worker 0 adopts the connection (same client: same address, port): the same bytes take the
  // allocation over; worker 1's nonce is good there (shared nonce key), no 438 round trip.
  const adopted = zero.client({ address: b.client.remote.address, port: b.client.remote.port });
  const moved = adopted.raw(b.link.handed[0]!.frame);
  assert.equal(moved?.messageClass, MessageClass.SuccessResponse, `got ${moved ? errorCode(moved) : 'nothing'}`);
  assert.equal(adopted.client.allocation?.deleted, false);
  assert.equal(zero.core.allocationCount, 1);
  assert.equal(zero.core.stats.authFailures, 0);
});

test("a Refresh with another worker's ticket and no credentials yet is handed over all the same; the holder asks for them", () => {
  const zero = world({ ...SHARED, ticketIssuer: { worker: 0, incarnation: 1 } });
  const one = world({ ...SHARED, ticketIssuer: { worker: 1, incarnation: 2 } });
  const ticket = ticketOf(zero.client().allocate([UDP, ASK]));
  const b = movable(one, 'handed');
  const request = b.build(Method.Refresh, [[AttributeType.MobilityTicket, { kind: 'bytes', bytes: ticket }]], false);
  assert.equal(b.raw(request), undefined);
  const adopted = zero.client({ address: b.client.remote.address, port: b.client.remote.port });
  assert.equal(errorCode(adopted.raw(b.link.handed[0]!.frame)!), ErrorCode.Unauthorized);
  assert.equal(refreshWith(adopted, ticket).messageClass, MessageClass.SuccessResponse);
});

test("another worker's ticket that cannot be handed over: 508 when busy, 437 when that worker is gone or the connection cannot move (TLS)", () => {
  const zero = world({ ...SHARED, ticketIssuer: { worker: 0, incarnation: 1 } });
  const one = world({ ...SHARED, ticketIssuer: { worker: 1, incarnation: 2 } });
  const ticket = ticketOf(zero.client().allocate([UDP, ASK]));
  const busy = movable(one, 'busy');
  const res = refreshWith(busy, ticket);
  assert.equal(errorCode(res), ErrorCode.InsufficientCapacity);
  assert.ok(getAttribute(res, AttributeType.MessageIntegrity), 'answered after the credential check');
  assert.equal(errorCode(refreshWith(movable(one, 'gone'), ticket)), ErrorCode.AllocationMismatch);
  assert.equal(errorCode(refreshWith(one.client(), ticket)), ErrorCode.AllocationMismatch);
  assert.equal(one.core.stats.handedOff, 0);
  // Its own tickets are never handed anywhere.
  const mine = movable(one, 'handed');
  const own = ticketOf(one.client().allocate([UDP, ASK]));
  assert.equal(refreshWith(mine, own).messageClass, MessageClass.SuccessResponse);
  assert.equal(mine.link.handed.length, 0);
});

test('a ticket from an earlier life of the same worker (restarted, ids start again) gets 437, not the new allocation with its id', () => {
  const before = world({ ...SHARED, ticketIssuer: { worker: 0, incarnation: 1 } });
  const after = world({ ...SHARED, ticketIssuer: { worker: 0, incarnation: 3 } });
  const old = ticketOf(before.client().allocate([UDP, ASK]));
  const fresh = after.client();
  fresh.allocate([UDP, ASK]);
  assert.equal(errorCode(refreshWith(after.client(), old)), ErrorCode.AllocationMismatch);
  assert.equal(fresh.client.allocation?.deleted, false);
});
