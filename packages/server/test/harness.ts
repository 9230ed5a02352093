// An in-memory world for TurnCore: fake client links, fake relay sockets, a settable clock.
import {
  AttributeType,
  MessageBuilder,
  MessageClass,
  Method,
  PasswordAlgorithm,
  decodeMessage,
  longTermKey,
  readAttribute,
  readText,
  type AttributeValue,
  type StunMessage,
  type TransportAddress,
} from '@onionturn/protocol';
import type { RandomSource } from '@onionturn/credentials';
import {
  Client,
  PeerPolicy,
  PortPool,
  TurnCore,
  staticUsers,
  type ClientLink,
  type CoreOptions,
  type CredentialLookup,
  type Relay,
  type RelaySocket,
} from '../src/index.js';

export class FakeLink implements ClientLink {
  readonly messages: Buffer[] = [];
  readonly channelData: { channel: number; data: Buffer }[] = [];
  closed = false;
  /** Calls of allocated()/released(), in order: the shell arms idle timers by them. */
  readonly holding: ('allocated' | 'released')[] = [];
  allocated(): void {
    this.holding.push('allocated');
  }
  released(): void {
    this.holding.push('released');
  }
  sendMessage(message: Buffer): void {
    this.messages.push(Buffer.from(message));
  }
  sendChannelData(channel: number, data: Buffer): void {
    this.channelData.push({ channel, data: Buffer.from(data) });
  }
  close(): void {
    this.closed = true;
  }
  /** The last message decoded. */
  last(): StunMessage {
    const raw = this.messages.at(-1);
    if (!raw) throw new Error('no message sent');
    const d = decodeMessage(raw);
    if (!d.ok) throw new Error(d.error.reason);
    return d.value;
  }
}

export class FakeRelaySocket implements RelaySocket {
  readonly sent: { data: Buffer; port: number; address: string }[] = [];
  closed = false;
  constructor(readonly relay: Relay) {}
  /** What setSolePeer last said: the peer the socket would be connected to. */
  solePeer: { port: number; address: string } | undefined = undefined;
  send(data: Buffer, offset: number, length: number, port: number, address: string): void {
    // A connected socket can only reach its peer: a send elsewhere would be a core bug.
    if (this.solePeer && (this.solePeer.port !== port || this.solePeer.address !== address)) throw new Error('send past the connected peer');
    this.sent.push({ data: Buffer.from(data.subarray(offset, offset + length)), port, address });
  }
  setSolePeer(port: number | undefined, address: string | undefined): void {
    this.solePeer = port === undefined || address === undefined ? undefined : { port, address };
  }
  close(): void {
    this.closed = true;
  }
}

export const REALM = 'onion.test';
export const USER = 'alice';
export const PASSWORD = 'wonderland';

export interface World {
  readonly core: TurnCore;
  /** `now`: the core's monotonic clock (time passing moves it); `wallStep`: a step of the wall clock alone (NTP). */
  readonly clock: { now: number; wallStep: number };
  readonly relays: FakeRelaySocket[];
  /** Ports the binder should refuse (already in use). */
  readonly busy: Set<number>;
  /** While true, binds wait in `heldBinds` until the test completes them (a slow bind). */
  holdBinds: boolean;
  readonly heldBinds: (() => void)[];
  client(remote?: Partial<TransportAddress>, transport?: 'udp' | 'tcp'): TestClient;
}

export function world(options: Partial<CoreOptions> & { users?: Record<string, string>; lookup?: CredentialLookup } = {}): World {
  const clock = { now: 1_700_000_000_000, wallStep: 0 };
  const relays: FakeRelaySocket[] = [];
  const busy = new Set<number>();
  const held: (() => void)[] = [];
  const hold = { on: false };
  const core = new TurnCore({
    realm: REALM,
    lookup: options.lookup ?? staticUsers(new Map(Object.entries(options.users ?? { [USER]: PASSWORD }))),
    policy: options.policy ?? new PeerPolicy({ ownAddresses: ['203.0.113.1'] }),
    ports: options.ports ?? new PortPool(50000, 50099, 150_000),
    binder: {
      bind(relay, done) {
        const finish = (): void => {
          if (busy.has(relay.port)) return done(undefined);
          const s = new FakeRelaySocket(relay);
          relays.push(s);
          done(s);
        };
        if (hold.on) held.push(finish);
        else finish();
      },
    },
    relay4: options.relay4 ?? { bind: '0.0.0.0', external: '198.51.100.10' },
    ...(options.relay6 ? { relay6: options.relay6 } : {}),
    now: () => clock.now,
    wallNow: () => clock.now + clock.wallStep,
    ...(options.filtering ? { filtering: options.filtering } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.lifetimes ? { lifetimes: options.lifetimes } : {}),
    ...(options.strictExpiry !== undefined ? { strictExpiry: options.strictExpiry } : {}),
    ...(options.software ? { software: options.software } : {}),
    ...(options.channelRange ? { channelRange: options.channelRange } : {}),
    ...(options.events ? { events: options.events } : {}),
    ...(options.random ? { random: options.random } : {}),
    ...(options.relays ? { relays: options.relays } : {}),
    ...(options.mobility !== undefined ? { mobility: options.mobility } : {}),
    ...(options.mobilityKey ? { mobilityKey: options.mobilityKey } : {}),
    ...(options.ticketIssuer ? { ticketIssuer: options.ticketIssuer } : {}),
    ...(options.nonceSecret ? { nonceSecret: options.nonceSecret } : {}),
    ...(options.nonceOrigin !== undefined ? { nonceOrigin: options.nonceOrigin } : {}),
  });
  let n = 0;
  return {
    core,
    clock,
    relays,
    busy,
    get holdBinds() {
      return hold.on;
    },
    set holdBinds(on: boolean) {
      hold.on = on;
    },
    heldBinds: held,
    client(remote = {}, transport = 'tcp') {
      n++;
      const addr: TransportAddress = { family: 'IPv4', address: '192.0.2.50', port: 40000 + n, ...remote };
      const link = new FakeLink();
      const c = new Client(transport, addr, link, `${transport}|${addr.address}|${addr.port}`);
      return new TestClient(core, c, link);
    },
  };
}

type Attr = readonly [number, AttributeValue];

export class TestClient {
  nonce = '';
  username = USER;
  password = PASSWORD;
  sha256 = false;
  constructor(
    readonly core: TurnCore,
    readonly client: Client,
    readonly link: FakeLink,
  ) {}

  /** Sends a raw message and returns what came back (or undefined). */
  raw(buf: Buffer): StunMessage | undefined {
    const before = this.link.messages.length;
    this.core.handleStun(this.client, buf);
    return this.link.messages.length > before ? this.link.last() : undefined;
  }

  build(method: number, attrs: readonly Attr[], auth: boolean, tid?: Buffer, extra: { fingerprint?: boolean; algorithm?: number } = {}): Buffer {
    const b = new MessageBuilder(method, MessageClass.Request, tid);
    for (const [t, v] of attrs) b.add(t, v);
    if (!auth) return b.build({ fingerprint: extra.fingerprint === true });
    b.add(AttributeType.Username, { kind: 'text', text: this.username });
    b.add(AttributeType.Realm, { kind: 'text', text: REALM });
    b.add(AttributeType.Nonce, { kind: 'text', text: this.nonce });
    const alg = extra.algorithm ?? PasswordAlgorithm.MD5;
    if (extra.algorithm !== undefined) {
      b.add(AttributeType.PasswordAlgorithm, { kind: 'password-algorithm', algorithm: { algorithm: alg, parameters: Buffer.alloc(0) } });
      b.add(AttributeType.PasswordAlgorithms, {
        kind: 'password-algorithms',
        algorithms: [
          { algorithm: PasswordAlgorithm.SHA256, parameters: Buffer.alloc(0) },
          { algorithm: PasswordAlgorithm.MD5, parameters: Buffer.alloc(0) },
        ],
      });
    }
    return b.build({ integrityKey: this.key(alg), sha1: !this.sha256, sha256: this.sha256, fingerprint: extra.fingerprint === true });
  }

  key(alg: number = PasswordAlgorithm.MD5): Buffer {
    return longTermKey(this.username, REALM, this.password, alg);
  }

  /** Sends an authenticated request, fetching a nonce first when needed. */
  request(method: number, attrs: readonly Attr[] = [], extra: { fingerprint?: boolean; algorithm?: number; tid?: Buffer } = {}): StunMessage {
    if (!this.nonce) this.challenge();
    let res = this.raw(this.build(method, attrs, true, extra.tid, extra));
    if (res && errorCode(res) === 438) {
      this.nonce = readText(res, AttributeType.Nonce) ?? '';
      res = this.raw(this.build(method, attrs, true, extra.tid, extra));
    }
    if (!res) throw new Error('no response');
    return res;
  }

  challenge(): StunMessage {
    const res = this.raw(this.build(Method.Allocate, [[AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }]], false));
    if (!res) throw new Error('no challenge');
    this.nonce = readText(res, AttributeType.Nonce) ?? '';
    return res;
  }

  allocate(attrs: readonly Attr[] = [[AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }]]): StunMessage {
    return this.request(Method.Allocate, attrs);
  }

  permit(...peers: TransportAddress[]): StunMessage {
    return this.request(
      Method.CreatePermission,
      peers.map((p) => [AttributeType.XorPeerAddress, { kind: 'address', address: p }] as Attr),
    );
  }

  bind(channel: number, peer: TransportAddress): StunMessage {
    return this.request(Method.ChannelBind, [
      [AttributeType.ChannelNumber, { kind: 'channel-number', channel }],
      [AttributeType.XorPeerAddress, { kind: 'address', address: peer }],
    ]);
  }

  send(peer: TransportAddress, data: Buffer): void {
    const b = new MessageBuilder(Method.Send, MessageClass.Indication)
      .add(AttributeType.XorPeerAddress, { kind: 'address', address: peer })
      .add(AttributeType.Data, { kind: 'bytes', bytes: data });
    this.core.handleStun(this.client, b.build());
  }

  channelData(channel: number, data: Buffer): void {
    const f = Buffer.alloc(4 + data.length);
    f.writeUInt16BE(channel, 0);
    f.writeUInt16BE(data.length, 2);
    data.copy(f, 4);
    this.core.handleChannelData(this.client, f);
  }
}

export function errorCode(msg: StunMessage): number | undefined {
  const r = readAttribute(msg, AttributeType.ErrorCode);
  return r?.ok && r.value.kind === 'error-code' ? r.value.code : undefined;
}

export function peer(address: string, port: number): TransportAddress {
  return { family: address.includes(':') ? 'IPv6' : 'IPv4', address, port };
}

/** A seeded RandomSource (xorshift32): the same seed, the same run. Tests only, never for secrets. */
export function seededRandom(seed: number): RandomSource {
  let x = seed >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return {
    bytes: (n) => Uint8Array.from({ length: n }, () => next() & 0xff),
    int: (min, max) => min + (next() % (max - min)),
  };
}
