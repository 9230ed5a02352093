// TurnCore fed whole client conversations through the server's in-memory harness (fake links,
// fake relay sockets, a settable clock). Requests can be re-signed with the known credential
// so mutated attributes get past authentication and reach the handlers.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { restPassword } from '@onionturn/credentials';
import {
  AttributeType,
  MessageBuilder,
  MessageClass,
  Method,
  PasswordAlgorithm,
  decodeMessage,
  longTermKey,
  readAddress,
  readAttribute,
  readText,
  type TransportAddress,
  readErrorCode,
} from '@onionturn/protocol';
import { DEFAULT_LIMITS, PeerPolicy, PortPool, chainLookups, restSecrets, staticUsers, type Limits } from '@onionturn/server';
import type * as Harness from '../../../packages/server/test/harness.js';
import { REPO_ROOT } from '../corpus.js';
import { mutateConversation, parseConversation, shrinkConversation, writeConversation, type Conversation, type ConversationShape } from '../conversation.js';
import type { Rng } from '../rng.js';
import { check, type Target } from '../target.js';

/** Record kinds of a conversation: [kind|flags u8][length u16][payload]. */
export const Op = {
  /** A STUN message on the client's stream. Flags: 0x80 re-sign, 0x40 SHA-256 integrity, 0x20 FINGERPRINT. */
  Stun: 0,
  ChannelData: 1,
  /** A datagram from the client (UDP path: STUN or ChannelData). Same flags as Stun. */
  Datagram: 2,
  /** From a peer: [relay index][peer index][port u16][data]. */
  Peer: 3,
  /** The clock moves forward [seconds u16]. */
  Clock: 4,
  Tick: 5,
  /** Switch to client [index] (0-1 TCP, 2-3 UDP). */
  Client: 6,
  /** The current client's connection closes. */
  Close: 7,
  /** SIGHUP: [bit 0: the static user is removed]. */
  Reload: 8,
  /** Relay port PORT_MIN + [n % 12] is taken by someone else: binding it fails. */
  Busy: 9,
  /** [bit 0]: binds wait (a slow bind) until a record with bit 0 clear completes them. */
  HoldBinds: 10,
} as const;
export const RESIGN = 0x80;
export const SHA256 = 0x40;
export const FINGERPRINT = 0x20;

export const PEERS = ['93.184.216.34', '2001:4860:4860::8888', '198.51.100.10', '127.0.0.1', '203.0.113.1', '8.8.8.8', '::ffff:10.0.0.1'];
/** The harness's relay address: a re-signed XOR-PEER-ADDRESS naming it gets the port of relay [port % relays]. */
const RELAY_EXTERNAL = '198.51.100.10';
const REST_SECRET = 'fuzz-rest-secret';
const SMALL: Partial<Limits> = {
  allocations: 3,
  allocationsPerUser: 2,
  permissionsPerAllocation: 3,
  channelsPerAllocation: 2,
  peersPerAllocation: 4,
  newPeersPerSecond: 3,
  unansweredSends: 3,
  unansweredSendsPerAllocation: 5,
  bandwidthPerAllocation: 2000,
  bandwidthTotal: 3000,
  packetsPerDestination: 6,
  destinations: 2,
};
const PORT_MIN = 50000;
const PORT_MAX = 50011;
const AUTH_TYPES: ReadonlySet<number> = new Set([
  AttributeType.Username,
  AttributeType.Realm,
  AttributeType.Nonce,
  AttributeType.MessageIntegrity,
  AttributeType.MessageIntegritySha256,
  AttributeType.Fingerprint,
  AttributeType.Userhash,
]);

let harness: typeof Harness | undefined;
/** Made once: building the default deny list costs more than a short conversation. */
let policy: PeerPolicy | undefined;

interface Slot {
  client: Harness.TestClient;
  nonce: string;
  seen: number;
}

class Run {
  readonly world: Harness.World;
  readonly ports = new PortPool(PORT_MIN, PORT_MAX, 60_000);
  readonly slots: (Slot | undefined)[] = [undefined, undefined, undefined, undefined];
  readonly limits: Limits;
  readonly behaviour = new Set<string>();
  readonly rest: boolean;
  readonly username: string;
  readonly password: string;
  current = 0;
  clients = 0;
  token: Buffer | undefined;
  outputs = 0;

  constructor(config: number) {
    const h = harness as typeof Harness;
    this.limits = { ...DEFAULT_LIMITS, ...(config & 1 ? SMALL : {}) };
    this.rest = (config & 0x10) !== 0;
    const now = 1_700_000_000_000;
    this.username = this.rest ? `${Math.floor(now / 1000) + 300}:fuzz` : h.USER;
    this.password = this.rest ? restPassword(REST_SECRET, this.username) : h.PASSWORD;
    this.world = h.world({
      policy: policy as PeerPolicy,
      ports: this.ports,
      limits: this.limits,
      ...(config & 2 ? { filtering: 'address' as const } : {}),
      ...(config & 4 ? { relay6: { bind: '::', external: '2001:db8::10' } } : {}),
      ...(config & 8 ? { lifetimes: { allocationDefaultSec: 60, allocationMaxSec: 120, permissionSec: 30, channelSec: 60, nonceSec: 20 } } : {}),
      ...(config & 0x20 ? { channelRange: 'rfc5766' as const } : {}),
      lookup: this.lookup(false),
    });
  }

  lookup(revoked: boolean): ReturnType<typeof staticUsers> {
    const h = harness as typeof Harness;
    return chainLookups(staticUsers(new Map(revoked ? [] : [[h.USER, h.PASSWORD]])), restSecrets({ secrets: [REST_SECRET] }));
  }

  slot(): Slot {
    let s = this.slots[this.current];
    if (!s) {
      this.clients++;
      const remote: Partial<TransportAddress> = this.current === 1 ? { family: 'IPv6', address: '2001:db8::50' } : {};
      s = { client: this.world.client(remote, this.current >= 2 ? 'udp' : 'tcp'), nonce: '', seen: 0 };
      this.slots[this.current] = s;
    }
    return s;
  }

  resign(s: Slot, raw: Buffer, flags: number): Buffer {
    const d = decodeMessage(raw);
    if (!d.ok || d.value.classic) return raw;
    const msg = d.value;
    const b = new MessageBuilder(msg.method, msg.messageClass, msg.transactionId);
    let algorithm: number = PasswordAlgorithm.MD5;
    for (const a of msg.attributes) {
      if (AUTH_TYPES.has(a.type)) continue;
      if (a.type === AttributeType.XorPeerAddress && this.world.relays.length > 0) {
        const peerAt = readAddress(a.value, msg.raw);
        if (peerAt.ok && peerAt.value.address === RELAY_EXTERNAL) {
          const relay = this.world.relays[peerAt.value.port % this.world.relays.length] as Harness.FakeRelaySocket;
          b.add(a.type, { kind: 'address', address: { ...peerAt.value, port: relay.relay.port } });
          continue;
        }
      }
      if (a.type === AttributeType.ReservationToken && this.token && a.value.length === 8) {
        b.addRaw(a.type, this.token);
        continue;
      }
      if (a.type === AttributeType.PasswordAlgorithm && a.value.length >= 2 && a.value.readUInt16BE(0) === PasswordAlgorithm.SHA256)
        algorithm = PasswordAlgorithm.SHA256;
      b.addRaw(a.type, a.value);
    }
    if (!s.nonce || msg.messageClass !== MessageClass.Request) return b.build({ fingerprint: (flags & FINGERPRINT) !== 0 });
    b.add(AttributeType.Username, { kind: 'text', text: this.username });
    b.add(AttributeType.Realm, { kind: 'text', text: (harness as typeof Harness).REALM });
    b.add(AttributeType.Nonce, { kind: 'text', text: s.nonce });
    const sha256 = (flags & SHA256) !== 0;
    try {
      return b.build({
        integrityKey: longTermKey(this.username, (harness as typeof Harness).REALM, this.password, algorithm),
        sha1: !sha256,
        sha256,
        fingerprint: (flags & FINGERPRINT) !== 0,
      });
    } catch {
      return raw; // over 64 KiB with the credential added
    }
  }

  /** Reads what the server sent since last time: every message must decode. */
  collect(): void {
    for (const s of this.slots) {
      if (!s) continue;
      const link = s.client.link;
      for (; s.seen < link.messages.length; s.seen++) {
        const raw = link.messages[s.seen] as Buffer;
        const d = decodeMessage(raw);
        check(d.ok && !d.value.classic, `the server sent a message that does not decode: ${raw.toString('hex').slice(0, 80)}`);
        const msg = d.value;
        const nonce = readText(msg, AttributeType.Nonce);
        if (nonce) s.nonce = nonce;
        const token = readAttribute(msg, AttributeType.ReservationToken);
        if (token?.ok && token.value.kind === 'bytes') this.token = Buffer.from(token.value.bytes);
        this.behaviour.add(`${msg.method}/${msg.messageClass}/${readErrorCode(msg)?.code ?? ''}`);
      }
      this.outputs += link.channelData.length;
      link.channelData.length = 0;
      if (link.closed) this.behaviour.add('closed');
    }
  }

  step(op: number, payload: Buffer): void {
    const w = this.world;
    const kind = op & 0x0f;
    switch (kind) {
      case Op.Stun:
      case Op.Datagram: {
        const s = this.slot();
        const raw = op & RESIGN ? this.resign(s, payload, op) : payload;
        if (kind === Op.Stun) w.core.handleStun(s.client.client, raw);
        else w.core.handleClientDatagram(s.client.client, raw);
        break;
      }
      case Op.ChannelData:
        w.core.handleChannelData(this.slot().client.client, payload);
        break;
      case Op.Peer: {
        const relay = w.relays[(payload[0] ?? 0) % Math.max(1, w.relays.length)];
        const address = PEERS[(payload[1] ?? 0) % PEERS.length] as string;
        const port = payload.length >= 4 ? payload.readUInt16BE(2) : 5000;
        if (relay) w.core.handlePeerDatagram(relay.relay, payload.subarray(4), address, port);
        break;
      }
      case Op.Clock:
        w.clock.now += (payload.length >= 2 ? payload.readUInt16BE(0) : 1) * 1000;
        break;
      case Op.Tick:
        w.core.tick();
        break;
      case Op.Client:
        this.current = (payload[0] ?? 0) & 3;
        break;
      case Op.Close: {
        const s = this.slots[this.current];
        if (s) {
          w.core.clientClosed(s.client.client);
          this.slots[this.current] = undefined;
        }
        break;
      }
      case Op.Busy:
        w.busy.add(PORT_MIN + ((payload[0] ?? 0) % (PORT_MAX - PORT_MIN + 1)));
        break;
      case Op.HoldBinds:
        w.holdBinds = ((payload[0] ?? 0) & 1) === 1;
        if (!w.holdBinds) for (const done of w.heldBinds.splice(0)) done();
        break;
      case Op.Reload:
        w.core.reload(policy as PeerPolicy, this.lookup(((payload[0] ?? 0) & 1) === 1));
        break;
      default:
        break;
    }
  }

  /** Bounds that must hold after every step. */
  checkBounds(steps: number): void {
    const core = this.world.core;
    check(core.allocationCount <= Math.min(this.clients, this.limits.allocations), `${core.allocationCount} allocations for ${this.clients} clients`);
    for (const a of core.allocations) {
      check(a.permissions.size <= this.limits.permissionsPerAllocation, `${a.permissions.size} permissions`);
      check((a.channels?.size ?? 0) <= this.limits.channelsPerAllocation, `${a.channels?.size} channels`);
      check(a.peerCount <= this.limits.peersPerAllocation, `${a.peerCount} peers`);
      let peers = 0;
      for (const p of a.permissions.values()) peers += p.peers.size;
      check(peers === a.peerCount, `peer count ${a.peerCount} but ${peers} peers held`);
    }
    let sent = 0;
    for (const r of this.world.relays) sent += r.sent.length;
    let msgs = 0;
    for (const s of this.slots) msgs += s?.client.link.messages.length ?? 0;
    check(
      sent <= 2 * steps && msgs <= 2 * steps && this.outputs <= 2 * steps,
      `${sent} datagrams to peers, ${msgs + this.outputs} to clients after ${steps} inputs`,
    );
  }

  /** After the conversation: closing everything frees every socket and, after quarantine, every port. */
  finish(): void {
    const w = this.world;
    // A bind that completes after everything closed must close its socket and give its port back.
    w.core.closeAll();
    w.holdBinds = false;
    for (const done of w.heldBinds.splice(0)) done();
    check(w.core.allocationCount === 0, 'allocations left after closeAll');
    const open = w.relays.filter((r) => !r.closed).length;
    check(open === 0, `${open} relay sockets left open after closeAll`);
    w.clock.now += 2 * 86_400_000;
    w.core.tick();
    let free = 0;
    while (this.ports.take(w.clock.now) !== undefined) free++;
    check(free === PORT_MAX - PORT_MIN + 1, `${PORT_MAX - PORT_MIN + 1 - free} relay ports leaked`);
  }
}

export const serverCore: Target = {
  name: 'server-core',
  // A conversation is twenty-odd messages with HMACs: about 50 times the cost of one decode.
  weight: 0.25,
  maxSize: 8192,
  budgetUs: (n) => 200_000 + 100 * n,
  async init() {
    if (harness) return;
    policy = new PeerPolicy({ ownAddresses: ['203.0.113.1'] });
    harness = (await import(pathToFileURL(join(REPO_ROOT, 'packages/server/dist/test/harness.js')).href)) as typeof Harness;
  },
  seeds: conversationSeeds,
  mutate: (input, rng, corpus) => mutateConversation(input, rng, corpus, SHAPE),
  shrink: shrinkConversation,
  run(input) {
    const conv = parseConversation(input);
    const run = new Run(conv.config);
    let steps = 0;
    for (const r of conv.records) {
      steps++;
      run.step(r.op, r.payload);
      run.collect();
      run.checkBounds(steps);
    }
    const stats = run.world.core.stats;
    const counters = Object.entries(stats)
      .filter(([, v]) => typeof v === 'number' && v > 0)
      .map(([k]) => k);
    const sig = [...run.behaviour].sort().join(',') + '|' + counters.join(',') + '|' + [...stats.quotaHits.keys()].join(',') + `|${conv.config & 0x3f}`;
    run.finish();
    return sig;
  },
};

// ---------------------------------------------------------------- seeds and mutation

function build(method: number, attrs: [number, Parameters<MessageBuilder['add']>[1]][], cls: number = MessageClass.Request): Buffer {
  const b = new MessageBuilder(method, cls as 0);
  for (const [t, v] of attrs) b.add(t, v);
  return b.build();
}

const UDP = [AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }] as [number, Parameters<MessageBuilder['add']>[1]];
const addr = (address: string, port: number): [number, Parameters<MessageBuilder['add']>[1]] => [
  AttributeType.XorPeerAddress,
  { kind: 'address', address: { family: address.includes(':') ? 'IPv6' : 'IPv4', address, port } },
];
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const cd = (channel: number, data: Buffer): Buffer => {
  const f = Buffer.alloc(4 + data.length);
  f.writeUInt16BE(channel, 0);
  f.writeUInt16BE(data.length, 2);
  data.copy(f, 4);
  return f;
};
const peerIn = (relay: number, peer: number, port: number, data: string): Buffer => Buffer.concat([Buffer.from([relay, peer]), u32(port), Buffer.from(data)]);

function conversationSeeds(): Buffer[] {
  const S = Op.Stun | RESIGN;
  const D = Op.Datagram | RESIGN;
  const lifetime = (n: number): [number, Parameters<MessageBuilder['add']>[1]] => [AttributeType.Lifetime, { kind: 'uint32', value: n }];
  const send = (address: string, port: number, data: string): Buffer =>
    build(Method.Send, [addr(address, port), [AttributeType.Data, { kind: 'bytes', bytes: Buffer.from(data) }]], MessageClass.Indication);
  const chan = (n: number, address: string, port: number): Buffer =>
    build(Method.ChannelBind, [[AttributeType.ChannelNumber, { kind: 'channel-number', channel: n }], addr(address, port)]);
  const full = (op: number, extra: { op: number; payload: Buffer }[] = []): { op: number; payload: Buffer }[] => [
    { op, payload: build(Method.Allocate, [UDP]) },
    { op, payload: build(Method.Allocate, [UDP, lifetime(1200)]) },
    { op, payload: build(Method.CreatePermission, [addr('93.184.216.34', 5000), addr('2001:4860:4860::8888', 53)]) },
    { op: op & 0x0f, payload: send('93.184.216.34', 5000, 'hello') },
    { op: Op.Peer, payload: peerIn(0, 0, 5000, 'answer') },
    { op: Op.Peer, payload: peerIn(0, 0, 5001, 'other port') },
    { op, payload: chan(0x4000, '93.184.216.34', 5000) },
    { op: op === D ? Op.Datagram : Op.ChannelData, payload: cd(0x4000, Buffer.from('via channel')) },
    { op: Op.Peer, payload: peerIn(0, 0, 5000, 'back via channel') },
    ...extra,
    { op: Op.Clock, payload: u32(200) },
    { op: Op.Tick, payload: Buffer.alloc(0) },
    { op, payload: build(Method.Refresh, [lifetime(600)]) },
    { op: Op.Clock, payload: u32(400) },
    { op: Op.Tick, payload: Buffer.alloc(0) },
    { op, payload: build(Method.CreatePermission, [addr('93.184.216.34', 5000)]) },
    { op, payload: build(Method.Refresh, [lifetime(0)]) },
  ];
  const tidA = build(Method.Allocate, [UDP]);
  const tidB = build(Method.Allocate, [UDP]);
  const algorithm = (alg: number, _offered: number[]): [number, Parameters<MessageBuilder['add']>[1]] => [
    AttributeType.PasswordAlgorithm,
    { kind: 'password-algorithm', algorithm: { algorithm: alg, parameters: Buffer.alloc(0) } },
  ];
  const algorithms = (algs: number[]): [number, Parameters<MessageBuilder['add']>[1]] => [
    AttributeType.PasswordAlgorithms,
    { kind: 'password-algorithms', algorithms: algs.map((a) => ({ algorithm: a, parameters: Buffer.alloc(0) })) },
  ];
  // Signed by someone else: an unknown user, or a wrong password and a nonce never issued.
  const foreign = (user: string): Buffer => {
    const b = new MessageBuilder(Method.Allocate, MessageClass.Request).add(UDP[0], UDP[1]);
    b.add(AttributeType.Username, { kind: 'text', text: user })
      .add(AttributeType.Realm, { kind: 'text', text: 'onion.test' })
      .add(AttributeType.Nonce, { kind: 'text', text: 'obMatJos2gAAAAAAAAAAAAAAAAAAAAAA' });
    return b.build({ integrityKey: longTermKey(user, 'onion.test', 'not the password') });
  };
  const convs: Conversation[] = [
    { config: 0, records: full(S) },
    { config: 0, records: [{ op: Op.Client, payload: Buffer.from([2]) }, ...full(D)] },
    { config: 2, records: full(S | FINGERPRINT) },
    { config: 8, records: full(S | SHA256) },
    {
      config: 0x10,
      records: full(S, [
        { op: Op.Clock, payload: u32(400) },
        { op: Op.Tick, payload: Buffer.alloc(0) },
      ]),
    },
    {
      config: 4,
      records: [
        { op: S, payload: build(Method.Allocate, [UDP, [AttributeType.RequestedAddressFamily, { kind: 'family', family: 'IPv6' }]]) },
        { op: S, payload: build(Method.Allocate, [UDP, [AttributeType.AdditionalAddressFamily, { kind: 'family', family: 'IPv6' }]]) },
        { op: S, payload: build(Method.CreatePermission, [addr('2001:4860:4860::8888', 53), addr('93.184.216.34', 5000)]) },
        { op: Op.Stun, payload: send('2001:4860:4860::8888', 53, 'v6') },
        { op: Op.Peer, payload: peerIn(1, 1, 53, 'v6 answer') },
        { op: S, payload: chan(0x4001, '2001:4860:4860::8888', 53) },
        { op: Op.ChannelData, payload: cd(0x4001, Buffer.from('v6 channel')) },
      ],
    },
    {
      config: 1,
      records: [
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: S, payload: build(Method.CreatePermission, [addr('93.184.216.34', 1), addr('8.8.8.8', 2), addr('1.1.1.1', 3), addr('9.9.9.9', 4)]) },
        { op: S, payload: chan(0x4000, '93.184.216.34', 1) },
        { op: S, payload: chan(0x4001, '8.8.8.8', 2) },
        { op: S, payload: chan(0x4002, '1.1.1.1', 3) },
        { op: S, payload: chan(0x4000, '8.8.8.8', 2) },
        { op: S, payload: build(Method.CreatePermission, [addr('127.0.0.1', 1), addr('10.0.0.1', 2)]) },
        ...[1, 2, 3, 4, 5, 6].map((i) => ({ op: Op.Stun, payload: send('93.184.216.34', 1 + i, 'x'.repeat(500)) })),
        { op: Op.Client, payload: Buffer.from([1]) },
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: Op.Client, payload: Buffer.from([2]) },
        { op: D, payload: build(Method.Allocate, [UDP]) },
        { op: D, payload: build(Method.Allocate, [UDP]) },
        { op: Op.Client, payload: Buffer.from([3]) },
        { op: D, payload: build(Method.Allocate, [UDP]) },
        { op: D, payload: build(Method.Allocate, [UDP]) },
        { op: Op.Close, payload: Buffer.alloc(0) },
        { op: Op.Client, payload: Buffer.from([0]) },
        { op: Op.Reload, payload: Buffer.from([1]) },
        { op: S, payload: build(Method.Refresh, [lifetime(600)]) },
      ],
    },
    {
      config: 0x20,
      records: [
        { op: S, payload: build(Method.Allocate, [UDP, [AttributeType.EvenPort, { kind: 'even-port', reserve: true }]]) },
        { op: S, payload: build(Method.Allocate, [UDP, [AttributeType.EvenPort, { kind: 'even-port', reserve: true }]]) },
        { op: Op.Client, payload: Buffer.from([1]) },
        { op: S, payload: build(Method.Allocate, [UDP, [AttributeType.ReservationToken, { kind: 'bytes', bytes: Buffer.alloc(8) }]]) },
        { op: S, payload: build(Method.Allocate, [UDP, [AttributeType.ReservationToken, { kind: 'bytes', bytes: Buffer.alloc(8) }]]) },
        { op: S, payload: build(Method.Allocate, [UDP, [AttributeType.DontFragment, { kind: 'empty' }]]) },
        { op: S, payload: build(Method.Allocate, [[AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 6 }]]) },
        { op: Op.Stun, payload: build(Method.Binding, []) },
        { op: S, payload: build(0x0005, []) },
        { op: S, payload: chan(0x4004, '93.184.216.34', 5000) },
        { op: Op.Clock, payload: u32(700) },
        { op: S, payload: build(Method.Refresh, []) },
        { op: Op.Close, payload: Buffer.alloc(0) },
      ],
    },
    {
      config: 0,
      records: [
        ...[0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => ({ op: Op.Busy, payload: Buffer.from([n]) })),
        { op: Op.HoldBinds, payload: Buffer.from([1]) },
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: Op.HoldBinds, payload: Buffer.from([0]) },
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: Op.Client, payload: Buffer.from([1]) },
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: S, payload: build(Method.CreatePermission, [addr('198.51.100.10', 0)]) },
        { op: Op.Stun | RESIGN, payload: send('198.51.100.10', 0, 'relay to relay') },
        { op: S, payload: chan(0x4000, '198.51.100.10', 0) },
        { op: Op.ChannelData, payload: cd(0x4000, Buffer.from('relay to relay on a channel')) },
        { op: Op.Client, payload: Buffer.from([0]) },
        { op: S, payload: build(Method.CreatePermission, [addr('198.51.100.10', 1)]) },
        { op: Op.Stun | RESIGN, payload: send('198.51.100.10', 1, 'back') },
        { op: Op.Close, payload: Buffer.alloc(0) },
        { op: Op.Client, payload: Buffer.from([1]) },
        { op: Op.ChannelData, payload: cd(0x4000, Buffer.from('to a relay that is gone')) },
        { op: Op.Clock, payload: u32(400) },
        { op: Op.Tick, payload: Buffer.alloc(0) },
        { op: Op.Clock, payload: u32(700) },
        { op: Op.Tick, payload: Buffer.alloc(0) },
      ],
    },
    {
      // Retransmissions (same transaction id), a slow bind, malformed Allocates, algorithms, foreign signatures.
      config: 0,
      records: [
        { op: S, payload: tidA },
        { op: S, payload: tidA },
        { op: S, payload: tidA },
        { op: Op.Client, payload: Buffer.from([1]) },
        { op: Op.HoldBinds, payload: Buffer.from([1]) },
        { op: S, payload: tidB },
        { op: S, payload: tidB },
        { op: S, payload: tidB },
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: Op.HoldBinds, payload: Buffer.from([0]) },
        { op: Op.Client, payload: Buffer.from([2]) },
        { op: D, payload: build(Method.Allocate, [UDP]) },
        {
          op: D,
          payload: build(Method.Allocate, [
            UDP,
            [AttributeType.RequestedAddressFamily, { kind: 'family', family: 'IPv4' }],
            [AttributeType.ReservationToken, { kind: 'bytes', bytes: Buffer.alloc(8) }],
          ]),
        },
        {
          op: D,
          payload: build(Method.Allocate, [
            UDP,
            [AttributeType.EvenPort, { kind: 'even-port', reserve: false }],
            [AttributeType.ReservationToken, { kind: 'bytes', bytes: Buffer.alloc(8) }],
          ]),
        },
        {
          op: D,
          payload: build(Method.Allocate, [
            UDP,
            [AttributeType.RequestedAddressFamily, { kind: 'family', family: 'IPv4' }],
            [AttributeType.AdditionalAddressFamily, { kind: 'family', family: 'IPv6' }],
          ]),
        },
        { op: D, payload: build(Method.Allocate, [UDP, [AttributeType.AdditionalAddressFamily, { kind: 'family', family: 'IPv4' }]]) },
        { op: D, payload: build(Method.Allocate, [UDP, algorithm(PasswordAlgorithm.SHA256, [PasswordAlgorithm.MD5])]) },
        {
          op: D,
          payload: build(Method.Allocate, [
            UDP,
            algorithm(3, [PasswordAlgorithm.MD5, PasswordAlgorithm.SHA256]),
            algorithms([PasswordAlgorithm.MD5, PasswordAlgorithm.SHA256]),
          ]),
        },
        {
          op: D,
          payload: build(Method.Allocate, [
            UDP,
            algorithm(PasswordAlgorithm.SHA256, [PasswordAlgorithm.MD5, PasswordAlgorithm.SHA256]),
            algorithms([PasswordAlgorithm.MD5, PasswordAlgorithm.SHA256]),
          ]),
        },
        { op: Op.Client, payload: Buffer.from([3]) },
        { op: Op.Datagram, payload: foreign('bob') },
        { op: D, payload: build(Method.Allocate, [UDP]) },
        { op: Op.Datagram, payload: foreign('alice') },
        { op: D, payload: build(Method.Allocate, [UDP]) },
        { op: D, payload: build(Method.Refresh, []) },
        { op: D, payload: build(Method.CreatePermission, []) },
        { op: D, payload: build(Method.ChannelBind, [addr('93.184.216.34', 1)]) },
      ],
    },
    {
      // Quotas, consent, bandwidth and expiry with small limits; then the same with address-only filtering.
      config: 1,
      records: [
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: S, payload: build(Method.CreatePermission, [addr('93.184.216.34', 1)]) },
        ...[1, 2, 3, 4, 5, 6].map((p) => ({ op: Op.Stun, payload: send('93.184.216.34', p, 'x'.repeat(900)) })),
        { op: Op.Peer, payload: peerIn(0, 0, 9, 'from a port never sent to') },
        { op: Op.Peer, payload: peerIn(0, 0, 1, 'answer') },
        ...[0x4000, 0x4001, 0x4002].map((n, i) => ({ op: S, payload: chan(n, '93.184.216.34', 1 + i) })),
        { op: S, payload: build(Method.Refresh, [[AttributeType.RequestedAddressFamily, { kind: 'family', family: 'IPv6' }]]) },
        { op: Op.Clock, payload: u32(301) },
        { op: Op.Tick, payload: Buffer.alloc(0) },
        { op: Op.Peer, payload: peerIn(0, 0, 1, 'after the permission expired') },
        { op: Op.Clock, payload: u32(601) },
        { op: Op.Tick, payload: Buffer.alloc(0) },
        { op: Op.ChannelData, payload: cd(0x4000, Buffer.from('after the channel expired')) },
      ],
    },
    {
      config: 3,
      records: [
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: S, payload: build(Method.CreatePermission, [addr('93.184.216.34', 1), addr('8.8.8.8', 1)]) },
        { op: Op.Stun, payload: send('93.184.216.34', 1, 'hi') },
        { op: Op.Peer, payload: peerIn(0, 0, 2, 'another port of the permitted address') },
        { op: Op.Peer, payload: peerIn(0, 0, 25, 'a port the policy may refuse') },
        { op: Op.Stun, payload: send('8.8.8.8', 1, 'second peer') },
        { op: Op.Clock, payload: u32(301) },
        { op: Op.Tick, payload: Buffer.alloc(0) },
      ],
    },
    {
      config: 0,
      records: [
        { op: Op.Datagram, payload: Buffer.from('GET / HTTP/1.1\r\n\r\n') },
        { op: Op.ChannelData, payload: cd(0x4000, Buffer.from('before allocate')) },
        { op: Op.Stun, payload: Buffer.from('000100002112a442000000000000000000000000', 'hex') },
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: Op.Stun, payload: build(Method.Allocate, [UDP]) },
        { op: S, payload: build(Method.Allocate, [UDP]) },
        { op: Op.Peer, payload: peerIn(0, 2, 50001, 'from a relay') },
        { op: S, payload: build(Method.CreatePermission, [addr('198.51.100.10', 50001)]) },
        { op: Op.Stun, payload: send('198.51.100.10', 50001, 'relay to relay') },
      ],
    },
  ];
  return convs.map(writeConversation);
}

function randomRecord(rng: Rng, corpus: readonly Buffer[]): { op: number; payload: Buffer } {
  switch (rng.below(6)) {
    case 0:
      return { op: Op.Clock, payload: u32(rng.pick([1, 10, 30, 61, 300, 601, 3601, rng.below(0x10000)])) };
    case 1:
      return { op: Op.Tick, payload: Buffer.alloc(0) };
    case 2:
      return { op: Op.Client, payload: Buffer.from([rng.below(4)]) };
    case 3:
      return {
        op: Op.Peer,
        payload: Buffer.concat([
          Buffer.from([rng.below(4), rng.below(PEERS.length)]),
          u32(rng.pick([5000, 53, 5001, 50001, rng.below(0x10000)])),
          rng.bytes(rng.below(40)),
        ]),
      };
    case 4: {
      const other = corpus.length > 0 ? parseConversation(rng.pick(corpus)).records : [];
      return other.length > 0 ? { ...rng.pick(other) } : { op: Op.Close, payload: Buffer.alloc(0) };
    }
    default:
      return { op: rng.pick([Op.Close, Op.Reload, Op.Busy, Op.HoldBinds]), payload: Buffer.from([rng.below(12)]) };
  }
}

const SHAPE: ConversationShape = {
  opFlags: [RESIGN, SHA256, FINGERPRINT, 1, 2, 4, 8],
  configBits: [1, 2, 4, 8, 16, 32],
  preferred: (r) => (r.op & 0x0f) === Op.Stun || (r.op & 0x0f) === Op.Datagram,
  newRecord: randomRecord,
  max: 8192,
};
