// The shim's flow machine fed whole flows: what a hostile app (any web page can send TURN to the
// shim) and a hostile upstream send, in any order, with dial results, credentials and the clock
// between them. Pass-through and local-credential mode, UDP and TCP. App requests can be re-signed
// with the local credential and the shim's latest nonce so mutated attributes get past the shim's
// own authentication and reach the resigner.
import {
  AttributeType,
  FrameKind,
  MessageBuilder,
  MessageClass,
  Method,
  StreamFramer,
  decodeMessage,
  encodeChannelData,
  longTermKey,
  readText,
  wireKindOf,
  WireKind,
} from '@onionturn/protocol';
import { AppAuthenticator, CredentialResigner, FlowMachine, NOT_TURN, ShimStats, messageEnd, type FlowAction } from '../adapters/shim-flow.js';
import { check, type Target } from '../target.js';
import { mutateConversation, parseConversation, shrinkConversation, writeConversation, type Conversation, type ConversationShape } from '../conversation.js';

/** Record kinds: [kind|flags u8][length u16][payload]. Config byte: bit 0 TCP, bit 1 local-credential mode. */
export const ShimOp = {
  /** From the app: a datagram (UDP) or a chunk of its stream (TCP). Flag 0x80: re-sign with the local credential. */
  App: 0,
  /** A chunk of the Tor stream from upstream. */
  Upstream: 1,
  /** The dial ended: [0 open, 1 no turn, 2 failed]. */
  Dialed: 2,
  /** The flow table grants the turn to dial. */
  Turn: 3,
  /** Local mode: the credential fetch ended: [0 failed | n: ok, expiring in n minutes]. */
  Credential: 4,
  /** The clock moves [seconds u16] and the flow ticks. */
  Tick: 5,
  /** The flow ends from outside: [0 app closed, 1 upstream closed, 2 stream failed, 3 shim stops]. */
  End: 6,
} as const;
export const RESIGN = 0x80;

const LOCAL = { username: 'app', password: 'app-pass', realm: 'onionturn.local' };
const APP = { family: 'IPv4' as const, address: '127.0.0.1', port: 5000 };
const QUEUE = { maxDatagrams: 16, maxBytes: 16 * 1024 };
const T0 = 1_000;

class Run {
  readonly m: FlowMachine;
  readonly stats = new ShimStats();
  readonly tcp: boolean;
  readonly resigner: CredentialResigner | undefined;
  readonly behaviour = new Set<string>();
  /** The shim's latest nonce, as the app would have read it from a 401. */
  nonce = '';
  now = T0;
  inputBytes = 0;
  outputs = 0;
  closed = false;
  readonly appFrames: StreamFramer;

  constructor(config: number) {
    this.tcp = (config & 1) !== 0;
    this.resigner = config & 2 ? new CredentialResigner({ auth: new AppAuthenticator(LOCAL), app: APP, maxPending: 8 }) : undefined;
    this.m = new FlowMachine({ kind: this.tcp ? 'tcp' : 'udp', now: T0, stats: this.stats, queueLimits: QUEUE, resigner: this.resigner });
    // What the shim sends a TCP app must be a well-formed TURN stream.
    this.appFrames = new StreamFramer((frame, kind) => this.sawAppMessage(frame, kind === FrameKind.ChannelData));
  }

  resign(raw: Buffer): Buffer {
    const d = decodeMessage(raw);
    if (!d.ok || d.value.classic || d.value.messageClass !== MessageClass.Request || !this.nonce) return raw;
    const msg = d.value;
    const b = new MessageBuilder(msg.method, msg.messageClass, msg.transactionId);
    for (const a of msg.attributes) {
      if (
        a.type === AttributeType.Username ||
        a.type === AttributeType.Realm ||
        a.type === AttributeType.Nonce ||
        a.type === AttributeType.MessageIntegrity ||
        a.type === AttributeType.MessageIntegritySha256 ||
        a.type === AttributeType.Fingerprint
      )
        continue;
      b.addRaw(a.type, a.value);
    }
    b.add(AttributeType.Username, { kind: 'text', text: LOCAL.username })
      .add(AttributeType.Realm, { kind: 'text', text: LOCAL.realm })
      .add(AttributeType.Nonce, { kind: 'text', text: this.nonce });
    try {
      return b.build({ integrityKey: longTermKey(LOCAL.username, LOCAL.realm, LOCAL.password), sha1: true, fingerprint: true });
    } catch {
      return raw;
    }
  }

  sawAppMessage(data: Buffer, channelData: boolean): void {
    if (channelData) return void this.behaviour.add('app:cd');
    // Pass-through hands the server's messages on as they came (only whole frames); local mode
    // answers and re-signs, so everything it sends the app must decode.
    check(data.length >= 20 && data.readUInt16BE(2) + 20 === data.length, `a broken STUN frame to the app: ${data.toString('hex').slice(0, 80)}`);
    if (!this.resigner) return void this.behaviour.add('app:stun');
    const d = decodeMessage(Buffer.from(data));
    check(d.ok, `the shim sent the app something that does not decode: ${data.toString('hex').slice(0, 80)}`);
    const nonce = readText(d.value, AttributeType.Nonce);
    if (nonce) this.nonce = nonce;
    this.behaviour.add(`app:${d.value.messageClass}`);
  }

  apply(actions: readonly FlowAction[], input: Buffer | undefined): void {
    check(!this.closed || actions.length === 0, `actions after close: ${actions.map((a) => a.kind).join(',')}`);
    for (const a of actions) {
      this.outputs++;
      this.behaviour.add(a.kind);
      switch (a.kind) {
        case 'send-app': {
          if (this.tcp) {
            const framed = Buffer.concat([a.data, Buffer.alloc(a.pad)]);
            this.appFrames.push(framed);
          } else {
            check(a.pad === 0, 'padding on a UDP datagram to the app');
            const first = a.data[0];
            check(first !== undefined, 'an empty datagram to the app');
            const kind = wireKindOf(first);
            check(
              kind === WireKind.Stun || kind === WireKind.ChannelData,
              `a datagram to the app that is neither STUN nor ChannelData: ${a.data.toString('hex').slice(0, 40)}`,
            );
            this.sawAppMessage(a.data, kind === WireKind.ChannelData);
          }
          break;
        }
        case 'send-upstream':
          // UDP: one message per write (TCP pass-through hands on stream bytes as they came).
          // Pass-through passes the app's messages on whole; local mode re-signs, so what it writes must decode.
          if (!this.tcp && a.data.length > 0 && wireKindOf(a.data[0] as number) === WireKind.Stun) {
            check(a.data.length >= 20 && a.data.readUInt16BE(2) + 20 === a.data.length, 'a broken STUN frame upstream');
            if (this.resigner) check(decodeMessage(Buffer.from(a.data)).ok, 'the shim sent upstream a STUN message that does not decode');
          }
          break;
        case 'forward-upstream':
        case 'forward-app':
          check(input !== undefined, `${a.kind} with no input to forward`);
          break;
        case 'close':
          check(a === actions[actions.length - 1], 'close is not the last action');
          this.closed = true;
          break;
        default:
          break;
      }
    }
  }

  step(op: number, payload: Buffer): void {
    const m = this.m;
    this.inputBytes += payload.length;
    switch (op & 0x0f) {
      case ShimOp.App: {
        const raw = op & RESIGN ? this.resign(payload) : payload;
        if (this.tcp) this.apply(m.fromAppBytes(raw, this.now), payload);
        else {
          // As the shim's UDP socket does: what is neither STUN nor ChannelData never reaches a flow.
          const end = messageEnd(raw);
          if (end === NOT_TURN) this.behaviour.add('app:not-turn');
          else this.apply(m.fromAppDatagram(raw, end, this.now), raw);
        }
        break;
      }
      case ShimOp.Upstream:
        this.apply(m.fromUpstream(payload, this.now), payload);
        break;
      case ShimOp.Dialed: {
        const k = (payload[0] ?? 0) % 3;
        this.apply(m.dialed(k === 0 ? { kind: 'open' } : k === 1 ? { kind: 'no-turn' } : { kind: 'failed', reason: 'fuzz' }), undefined);
        break;
      }
      case ShimOp.Turn:
        this.apply(m.turnGranted(), undefined);
        break;
      case ShimOp.Credential: {
        const minutes = payload[0] ?? 0;
        const r =
          minutes === 0
            ? ({ ok: false, error: { code: 'credentials', reason: 'fuzz' } } as const)
            : ({ ok: true, value: { username: 'u', password: 'p', expiresAt: this.now + minutes * 60_000 } } as const);
        this.apply(m.credential(r, this.now), undefined);
        break;
      }
      case ShimOp.Tick:
        this.now += (payload.length >= 2 ? payload.readUInt16BE(0) : 1) * 1000;
        this.apply(m.tick(this.now), undefined);
        break;
      case ShimOp.End: {
        const k = (payload[0] ?? 0) % 4;
        this.apply(k === 0 ? m.appEnded() : k === 1 ? m.upstreamEnded() : k === 2 ? m.upstreamFailed('ECONNRESET') : m.close('shim stopping'), undefined);
        break;
      }
      default:
        break;
    }
  }

  checkBounds(steps: number): void {
    check(this.m.state.queued <= QUEUE.maxDatagrams, `${this.m.state.queued} datagrams queued`);
    check((this.resigner?.pendingCount ?? 0) <= 8, `${this.resigner?.pendingCount} transactions pending`);
    // Each input yields a few actions, plus one per frame it held: linear in what came in.
    check(this.outputs <= 8 * steps + this.inputBytes / 4, `${this.outputs} actions for ${steps} inputs of ${this.inputBytes} bytes`);
  }
}

export const shimFlow: Target = {
  name: 'shim-flow',
  weight: 0.5,
  maxSize: 8192,
  budgetUs: (n) => 100_000 + 100 * n,
  seeds: flowSeeds,
  mutate: (input, rng, corpus) => mutateConversation(input, rng, corpus, SHAPE),
  shrink: shrinkConversation,
  run(input) {
    const conv = parseConversation(input);
    const run = new Run(conv.config);
    run.apply(run.m.start(), undefined);
    let steps = 0;
    for (const r of conv.records) {
      steps++;
      run.step(r.op, r.payload);
      run.checkBounds(steps);
    }
    run.apply(run.m.close('fuzz over'), undefined);
    check(run.m.isClosed(), 'the flow is not closed after close()');
    const counters = Object.entries(run.stats)
      .filter(([, v]) => typeof v === 'number' && v > 0)
      .map(([k]) => k);
    return `${[...run.behaviour].sort().join(',')}|${counters.join(',')}|${run.m.phase}|${conv.config & 3}`;
  },
};

// ---------------------------------------------------------------- seeds and mutation

const UDP_TRANSPORT = [AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }] as const;
const request = (method: number, attrs: readonly (readonly [number, Parameters<MessageBuilder['add']>[1]])[] = []): Buffer => {
  const b = new MessageBuilder(method, MessageClass.Request);
  for (const [t, v] of attrs) b.add(t, v);
  return b.build();
};
const response = (method: number, cls: number, attrs: readonly (readonly [number, Parameters<MessageBuilder['add']>[1]])[] = [], tid?: Buffer): Buffer => {
  const b = new MessageBuilder(method, cls as 0, tid);
  for (const [t, v] of attrs) b.add(t, v);
  return b.build();
};
const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const rec = (op: number, payload: Buffer | number[] = []): { op: number; payload: Buffer } => ({
  op,
  payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
});

function flowSeeds(): Buffer[] {
  const allocate = request(Method.Allocate, [UDP_TRANSPORT]);
  const tid = allocate.subarray(8, 20);
  const challenge = response(
    Method.Allocate,
    MessageClass.ErrorResponse,
    [
      [AttributeType.ErrorCode, { kind: 'error-code', code: 401, reason: 'Unauthorized' }],
      [AttributeType.Realm, { kind: 'text', text: 'server.realm' }],
      [AttributeType.Nonce, { kind: 'text', text: 'server-nonce-1234' }],
    ],
    tid,
  );
  const ok = response(Method.Allocate, MessageClass.SuccessResponse, [[AttributeType.Lifetime, { kind: 'uint32', value: 600 }]], tid);
  const peer = { kind: 'address' as const, address: { family: 'IPv4' as const, address: '93.184.216.34', port: 5000 } };
  const bind = request(Method.ChannelBind, [
    [AttributeType.ChannelNumber, { kind: 'channel-number', channel: 0x4000 }],
    [AttributeType.XorPeerAddress, peer],
  ]);
  const cd = encodeChannelData(0x4000, Buffer.from('media'), false);
  const padded = encodeChannelData(0x4000, Buffer.from('odd'), true);
  const refresh0 = response(Method.Refresh, MessageClass.SuccessResponse, [[AttributeType.Lifetime, { kind: 'uint32', value: 0 }]]);
  const pass = (config: number): Conversation => ({
    config,
    records: [
      rec(ShimOp.App, allocate),
      rec(ShimOp.Turn),
      rec(ShimOp.App, bind),
      rec(ShimOp.Dialed, [0]),
      rec(ShimOp.Upstream, challenge),
      rec(ShimOp.App, allocate),
      rec(ShimOp.Upstream, Buffer.concat([ok, padded])),
      rec(ShimOp.App, cd),
      rec(ShimOp.Upstream, cd.subarray(0, 3)),
      rec(ShimOp.Upstream, cd.subarray(3)),
      rec(ShimOp.Tick, u16(30)),
      rec(ShimOp.Upstream, refresh0),
      rec(ShimOp.Tick, u16(700)),
    ],
  });
  const local = (config: number): Conversation => ({
    config,
    records: [
      rec(ShimOp.App, allocate),
      rec(ShimOp.App | RESIGN, allocate),
      rec(ShimOp.Turn),
      rec(ShimOp.Credential, [10]),
      rec(ShimOp.Dialed, [0]),
      rec(ShimOp.Upstream, challenge),
      rec(ShimOp.Upstream, ok),
      rec(ShimOp.App | RESIGN, bind),
      rec(ShimOp.App, cd),
      rec(ShimOp.Tick, u16(480)),
      rec(ShimOp.Credential, [0]),
      rec(ShimOp.App | RESIGN, request(Method.Binding)),
      rec(ShimOp.App, request(Method.Binding)),
      rec(ShimOp.Tick, u16(60)),
      rec(ShimOp.End, [1]),
    ],
  });
  const hostile: Conversation = {
    config: 1,
    records: [rec(ShimOp.App, Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')), rec(ShimOp.Tick, u16(11))],
  };
  const garbageUpstream: Conversation = {
    config: 0,
    records: [rec(ShimOp.App, allocate), rec(ShimOp.Turn), rec(ShimOp.Dialed, [0]), rec(ShimOp.Upstream, Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'))],
  };
  const failedDial: Conversation = {
    config: 2,
    records: [rec(ShimOp.App | RESIGN, allocate), rec(ShimOp.Turn), rec(ShimOp.Dialed, [2]), rec(ShimOp.App, allocate)],
  };
  return [pass(0), pass(1), local(2), local(3), hostile, garbageUpstream, failedDial].map(writeConversation);
}

const SHAPE: ConversationShape = {
  opFlags: [RESIGN, 1, 2, 4],
  configBits: [1, 2],
  // A record from another input of the corpus.
  newRecord(rng, corpus) {
    const other = corpus.length > 0 ? parseConversation(rng.pick(corpus)).records : [];
    return other.length > 0 ? { ...rng.pick(other) } : undefined;
  },
  max: 8192,
};
