import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { DNS_TYPE_A, DNS_TYPE_AAAA, decodeDnsQuery, encodeDnsAnswer, encodeDnsFormatError, startDnsResponder } from '../src/index.js';

/** A query as evdns sends it: RD set, one question, optional EDNS OPT record. */
function query(id: number, name: string, type: number, edns = false): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(edns ? 1 : 0, 10);
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2);
  const opt = edns ? Buffer.from([0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]) : Buffer.alloc(0);
  return Buffer.concat([header, ...labels, Buffer.from([0]), tail, opt]);
}

test('decodes a query and keeps the name case (tor randomizes it)', () => {
  const q = decodeDnsQuery(query(0x1234, 'eXaMple.ONION-turn.test', DNS_TYPE_A, true));
  assert.ok(q);
  assert.equal(q.id, 0x1234);
  assert.equal(q.name, 'eXaMple.ONION-turn.test');
  assert.equal(q.type, DNS_TYPE_A);
  assert.equal(q.class, 1);
});

test('A answer: header flags, echoed question, one compressed A record', () => {
  const packet = query(7, 'Echo.Test', DNS_TYPE_A);
  const q = decodeDnsQuery(packet)!;
  const a = encodeDnsAnswer(q, ['127.0.0.1'], 30);
  assert.equal(a.readUInt16BE(0), 7);
  assert.equal(a.readUInt16BE(2), 0x8180); // QR, RD copied, RA, NOERROR
  assert.deepEqual([a.readUInt16BE(4), a.readUInt16BE(6), a.readUInt16BE(8), a.readUInt16BE(10)], [1, 1, 0, 0]);
  const qEnd = packet.length;
  assert.ok(a.subarray(12, qEnd).equals(packet.subarray(12)));
  const rr = a.subarray(qEnd);
  assert.equal(rr.readUInt16BE(0), 0xc00c);
  assert.equal(rr.readUInt16BE(2), DNS_TYPE_A);
  assert.equal(rr.readUInt32BE(6), 30);
  assert.equal(rr.readUInt16BE(10), 4);
  assert.deepEqual([...rr.subarray(12)], [127, 0, 0, 1]);
});

test('AAAA and other types get NOERROR with no records', () => {
  const a = encodeDnsAnswer(decodeDnsQuery(query(9, 'x.test', DNS_TYPE_AAAA))!, ['127.0.0.1']);
  assert.equal(a.readUInt16BE(2) & 0x000f, 0);
  assert.equal(a.readUInt16BE(6), 0);
});

test('malformed packets are not parsed; FORMERR keeps the id', () => {
  assert.equal(decodeDnsQuery(Buffer.alloc(5)), undefined);
  const truncated = query(3, 'abc.test', DNS_TYPE_A).subarray(0, 16);
  assert.equal(decodeDnsQuery(truncated), undefined);
  const response = query(3, 'abc.test', DNS_TYPE_A);
  response.writeUInt16BE(0x8100, 2);
  assert.equal(decodeDnsQuery(response), undefined);
  const err = encodeDnsFormatError(truncated)!;
  assert.equal(err.readUInt16BE(0), 3);
  assert.equal(err.readUInt16BE(2) & 0x000f, 1);
  assert.throws(() => encodeDnsAnswer(decodeDnsQuery(query(1, 'a.b', DNS_TYPE_A))!, ['300.1.1.1']), /IPv4/);
});

test('the responder answers over loopback UDP and records the names', async (t) => {
  const dns = await startDnsResponder();
  t.after(() => dns.close());
  const sock = createSocket('udp4');
  t.after(() => sock.close());
  sock.send(query(42, 'Peer.Example.test', DNS_TYPE_A, true), dns.port, '127.0.0.1');
  const [reply] = (await once(sock, 'message')) as [Buffer];
  assert.equal(reply.readUInt16BE(0), 42);
  assert.equal(reply.readUInt16BE(6), 1);
  assert.deepEqual([...reply.subarray(reply.length - 4)], [127, 0, 0, 1]);
  assert.deepEqual(dns.queries, ['peer.example.test']);
});
