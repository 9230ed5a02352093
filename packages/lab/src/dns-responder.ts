// A tiny DNS responder for the test network's exits: tor ignores /etc/hosts, so without a
// resolver the exits cannot connect to hostname destinations. Every A query is answered with
// one fixed loopback address; other types get an empty NOERROR answer so exits fall back to A.
import { createSocket, type Socket } from 'node:dgram';

export const DNS_TYPE_A = 1;
export const DNS_TYPE_AAAA = 28;
const DNS_CLASS_IN = 1;
const HEADER_LEN = 12;
const RCODE_FORMERR = 1;

export interface DnsQuery {
  readonly id: number;
  readonly flags: number;
  /** The queried name as sent (case preserved: tor randomizes case and checks the echo). */
  readonly name: string;
  readonly type: number;
  readonly class: number;
  /** The raw question section (name + type + class), echoed verbatim in the answer. */
  readonly question: Buffer;
}

/** Parses a standard query with exactly one question; undefined for anything else. */
export function decodeDnsQuery(packet: Buffer): DnsQuery | undefined {
  if (packet.length < HEADER_LEN) return undefined;
  const id = packet.readUInt16BE(0);
  const flags = packet.readUInt16BE(2);
  if ((flags & 0x8000) !== 0) return undefined; // a response, not a query
  if (packet.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let off = HEADER_LEN;
  for (;;) {
    const len = packet[off];
    if (len === undefined) return undefined;
    off += 1;
    if (len === 0) break;
    if (len > 63) return undefined; // compression pointers never appear in a lone question
    if (off + len > packet.length) return undefined;
    labels.push(packet.toString('latin1', off, off + len));
    off += len;
  }
  if (off + 4 > packet.length) return undefined;
  const type = packet.readUInt16BE(off);
  const cls = packet.readUInt16BE(off + 2);
  return { id, flags, name: labels.join('.'), type, class: cls, question: packet.subarray(HEADER_LEN, off + 4) };
}

/** Encodes the answer to `query`: one A record per IPv4 address given (only for A/IN queries). */
export function encodeDnsAnswer(query: DnsQuery, ipv4: readonly string[], ttlSeconds = 60): Buffer {
  const answers = query.type === DNS_TYPE_A && query.class === DNS_CLASS_IN ? ipv4 : [];
  const header = Buffer.alloc(HEADER_LEN);
  header.writeUInt16BE(query.id, 0);
  // QR=1, keep opcode and RD from the query, RA=1, RCODE=0.
  header.writeUInt16BE(0x8000 | (query.flags & 0x7900) | 0x0080, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const records = answers.map((addr) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc000 | HEADER_LEN, 0); // pointer to the question's name
    rr.writeUInt16BE(DNS_TYPE_A, 2);
    rr.writeUInt16BE(DNS_CLASS_IN, 4);
    rr.writeUInt32BE(ttlSeconds, 6);
    rr.writeUInt16BE(4, 10);
    const octets = addr.split('.').map(Number);
    if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) {
      throw new Error(`not an IPv4 address: ${addr}`);
    }
    octets.forEach((o, i) => rr.writeUInt8(o, 12 + i));
    return rr;
  });
  return Buffer.concat([header, query.question, ...records]);
}

/** A FORMERR reply for a packet we cannot parse but whose header id we can read. */
export function encodeDnsFormatError(packet: Buffer): Buffer | undefined {
  if (packet.length < HEADER_LEN) return undefined;
  const reply = Buffer.alloc(HEADER_LEN);
  reply.writeUInt16BE(packet.readUInt16BE(0), 0);
  reply.writeUInt16BE(0x8000 | (packet.readUInt16BE(2) & 0x7900) | 0x0080 | RCODE_FORMERR, 2);
  return reply;
}

export interface DnsResponder {
  readonly host: string;
  readonly port: number;
  /** Names queried so far (lower-cased), for tests that want to see the exits resolving. */
  readonly queries: readonly string[];
  close(): Promise<void>;
}

export interface DnsResponderOptions {
  /** Loopback address to bind (default 127.0.0.1). */
  readonly host?: string;
  /** Port (default: any free one). */
  readonly port?: number;
  /** The IPv4 address every A query resolves to (default 127.0.0.1). */
  readonly answer?: string;
}

/** Starts the responder on a loopback UDP port. */
export async function startDnsResponder(options: DnsResponderOptions = {}): Promise<DnsResponder> {
  const host = options.host ?? '127.0.0.1';
  const answer = options.answer ?? '127.0.0.1';
  const queries: string[] = [];
  const socket: Socket = createSocket('udp4');
  socket.on('message', (packet, rinfo) => {
    const query = decodeDnsQuery(packet);
    const reply = query ? encodeDnsAnswer(query, [answer]) : encodeDnsFormatError(packet);
    if (query && queries.length < 1000) queries.push(query.name.toLowerCase());
    if (reply) socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(options.port ?? 0, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  // A late socket error must not crash the test process; the exits then just fail to resolve.
  socket.on('error', () => undefined);
  let closed: Promise<void> | undefined;
  return {
    host,
    port: socket.address().port,
    queries,
    close: (): Promise<void> => (closed ??= new Promise<void>((resolve) => socket.close(() => resolve()))),
  };
}
