// Local-credential mode, sans-IO: towards the app the shim is the TURN server (its own REALM,
// NONCE and static user), towards upstream it is the client (the flow's REST credential). Every
// request is checked with the local key and re-signed with the upstream key; every response is
// checked with the upstream key and re-signed with the local key under the app's transaction id.
// Upstream 401/438 challenges are answered here and never reach the app. Indications and
// ChannelData are not the resigner's business: the shell passes them through unchanged.
// Binding requests are answered here (binding-answer.ts): they never cost a Tor stream.
// The app-facing check and its nonces belong to the shim (app-auth.ts), shared by its flows.
// Time is passed in; the only randomness (transaction ids of retries) is injectable.
// Mobility (RFC 8016): the upstream Allocate asks for a MOBILITY-TICKET (the shim signs it, so it
// may add one); the ticket stays here, and after a lost Tor stream moveRequest() takes the
// allocation over on the new one with a Refresh the app never sees.
import { randomBytes } from 'node:crypto';
import {
  AttributeType,
  ErrorCode,
  MessageBuilder,
  MessageClass,
  Method,
  HEADER_LENGTH,
  TRANSACTION_ID_LENGTH,
  decodeAttribute,
  decodeMessage,
  getAttribute,
  longTermKey,
  readText,
  verifyIntegrity,
  type StunMessage,
  type TransportAddress,
  readErrorCode,
  DELAY_FEEDBACK_ATTRIBUTE,
  decodeDelayFeedback,
  hasDelayFeedbackOffer,
  withDelayFeedbackOffer,
  type DelayFeedback,
} from '@onionturn/protocol';
import type { AppAuthenticator } from './app-auth.js';
import { answerBinding } from './binding-answer.js';

export interface UpstreamCredential {
  readonly username: string;
  readonly password: string;
  /** When it stops working (ms since the epoch); the shell fetches a new one before. */
  readonly expiresAt: number;
}

export type ResignAction =
  | { readonly kind: 'to-app'; readonly data: Buffer }
  | { readonly kind: 'to-upstream'; readonly data: Buffer }
  /** The allocation was taken over on the new stream (mobility) / the server would not. */
  | { readonly kind: 'moved' }
  | { readonly kind: 'move-failed'; readonly reason: string }
  /**
   * The delay extension (issue 14): upstream echoed DELAY-FEEDBACK in the success of an Allocate
   * or take-over Refresh that offered it ('negotiated'; the stream runs it from now on) or did not
   * ('declined': a server that does not speak it, such as coturn; no reports ever); a report
   * arrived on a negotiated stream.
   */
  | { readonly kind: 'delay-negotiated' }
  | { readonly kind: 'delay-declined' }
  | { readonly kind: 'delay-report'; readonly report: DelayFeedback }
  /**
   * Something the user should know. A malicious app or upstream can make these per message, so
   * the shell logs the first of each `code` per flow and counts the rest.
   */
  | { readonly kind: 'warn'; readonly code: ResignWarning; readonly reason: string };

/** What a warn action is about: the unit the shell logs once per flow. */
export type ResignWarning = 'app-malformed' | 'app-auth' | 'app-early-indication' | 'upstream-malformed' | 'upstream-refused' | 'upstream-integrity';

export interface ResignerOptions {
  /** The shim's app-facing check (local credentials and nonces), shared by its flows. */
  readonly auth: AppAuthenticator;
  /**
   * The app's transport address as the shim sees it: what Binding answers map and nonces are
   * bound to. Unknown: Bindings are dropped.
   */
  readonly app?: TransportAddress;
  /** Upstream transactions waiting for an answer, at most (older ones are forgotten). */
  readonly maxPending?: number;
  /** Forgotten when unanswered this long (ms). */
  readonly pendingTimeoutMs?: number;
  /** Random bytes (transaction ids of retries); tests pass a fixed source. */
  readonly random?: (n: number) => Buffer;
  /** Offer the delay extension in every Allocate and take-over Refresh sent upstream (default false). */
  readonly offerDelayFeedback?: boolean;
}

/** What the user is told, once per flow (or, without a flow, now and then by the shim). */
export const WRONG_LOCAL_CREDENTIALS = 'app authentication failed: wrong local username or password (401)';

/** Upstream challenges answered for one app request before giving up (401 then 438, say). */
const MAX_UPSTREAM_ATTEMPTS = 3;

/** Attributes that belong to one hop's authentication and are rebuilt for the other hop. */
const HOP_ATTRIBUTES: ReadonlySet<number> = new Set([
  AttributeType.Username,
  AttributeType.Userhash,
  AttributeType.Realm,
  AttributeType.Nonce,
  AttributeType.MessageIntegrity,
  AttributeType.MessageIntegritySha256,
  AttributeType.PasswordAlgorithm,
  AttributeType.PasswordAlgorithms,
  AttributeType.Fingerprint,
  // The shim's own extension with the server: never taken from the app nor shown to it.
  DELAY_FEEDBACK_ATTRIBUTE,
]);
const NEGOTIATED: ResignAction = Object.freeze({ kind: 'delay-negotiated' });
const DECLINED: ResignAction = Object.freeze({ kind: 'delay-declined' });

/** XOR-addressed attributes depend on the transaction id (IPv6): re-encoded, never copied. */
const XOR_ADDRESSES: ReadonlySet<number> = new Set([AttributeType.XorMappedAddress, AttributeType.XorPeerAddress, AttributeType.XorRelayedAddress]);

interface Pending {
  /** The shim's own mobility Refresh: its answer never reaches the app. */
  readonly internal?: boolean;
  /** The app's request (a private copy). */
  readonly request: StunMessage;
  readonly appTxid: string;
  /** Which integrity attributes the app used: its response carries the same. */
  readonly sha1: boolean;
  readonly sha256: boolean;
  readonly fingerprint: boolean;
  attempts: number;
  /** Key the upstream copy was signed with; undefined when it went unsigned (realm unknown). */
  upstreamKey: Buffer | undefined;
  sentAt: number;
}

interface UpstreamAuth {
  realm: string;
  nonce: string;
}

export class CredentialResigner {
  readonly #auth: AppAuthenticator;
  readonly #app: TransportAddress | undefined;
  readonly #maxPending: number;
  readonly #pendingTimeoutMs: number;
  readonly #random: (n: number) => Buffer;
  #credential: UpstreamCredential | undefined;
  #upstreamKey: Buffer | undefined;
  #upstreamAuth: UpstreamAuth | undefined;
  /** Keyed by the upstream transaction id (hex). */
  readonly #pending = new Map<string, Pending>();
  /** App transaction ids in flight (hex): retransmissions of those are absorbed. */
  readonly #inFlight = new Set<string>();
  #wrongReported = false;
  /** A request of the app has passed the local check: indications may go upstream. */
  #appAuthenticated = false;
  /** Requests waiting for the upstream credential after a challenge. */
  #waiting: Pending[] = [];
  /** RFC 8016: asked for at Allocate until upstream refuses (405); the newest ticket. */
  #askMobility = true;
  #ticket: Buffer | undefined;
  readonly #offerDelayFeedback: boolean;
  /** The current stream negotiated the delay extension: its Binding indications are reports. */
  #delayFeedback = false;

  constructor(opts: ResignerOptions) {
    this.#offerDelayFeedback = opts.offerDelayFeedback === true;
    this.#auth = opts.auth;
    this.#app = opts.app;
    this.#maxPending = opts.maxPending ?? 64;
    this.#pendingTimeoutMs = opts.pendingTimeoutMs ?? 60_000;
    this.#random = opts.random ?? randomBytes;
  }

  get hasCredential(): boolean {
    return this.#credential !== undefined;
  }

  get credentialExpiresAt(): number | undefined {
    return this.#credential?.expiresAt;
  }

  /** Upstream gave a mobility ticket: a lost stream can be replaced without losing the allocation. */
  get movable(): boolean {
    return this.#ticket !== undefined && this.#credential !== undefined && this.#upstreamKey !== undefined;
  }

  /**
   * The new stream came with the server's 401 (a held stream's, ready-challenge.ts): its realm and
   * nonce, bound to that stream, sign what goes on it next, so the take-over Refresh is not first
   * refused for the old stream's nonce (a 438 round trip over Tor).
   */
  useChallenge(challenge: StunMessage): void {
    const realm = readText(challenge, AttributeType.Realm);
    const nonce = readText(challenge, AttributeType.Nonce);
    if (realm === undefined || nonce === undefined) return;
    this.#upstreamAuth = { realm, nonce };
    const cred = this.#credential;
    if (cred) this.#upstreamKey = longTermKey(cred.username, realm, cred.password);
  }

  /**
   * The flow's first stream opened with the server's 401 (a held stream's; useChallenge has taken
   * its realm and nonce): a request made unsigned while the stream was dialing is signed now
   * instead of drawing that 401 over Tor (a circuit round trip of setup), or, while the upstream
   * credential is still being fetched, waits for it (undefined: setUpstreamCredential sends it).
   * Anything else, `data` as it was.
   */
  signQueued(data: Buffer, now: number): Buffer | undefined {
    if (data.length < HEADER_LENGTH || this.#upstreamAuth === undefined) return data;
    // The transaction id: the header's last 12 bytes.
    const txid = data.toString('hex', HEADER_LENGTH - TRANSACTION_ID_LENGTH, HEADER_LENGTH);
    const p = this.#pending.get(txid);
    if (p === undefined || p.upstreamKey !== undefined) return data;
    this.#pending.delete(txid);
    p.attempts--; // built, never sent
    if (this.#credential === undefined || this.#upstreamKey === undefined) {
      this.#waiting.push(p);
      return undefined;
    }
    return this.#sendUpstream(p, now, false).data;
  }

  /**
   * The stream is lost: what was in flight on it is forgotten (a UDP app retransmits), and the
   * take-over Refresh with the ticket is what goes on the new stream.
   */
  moveRequest(now: number): ResignAction[] {
    // A new stream: whatever it runs is negotiated afresh by the take-over Refresh.
    this.#delayFeedback = false;
    this.#pending.clear();
    this.#inFlight.clear();
    this.#waiting = [];
    const ticket = this.#ticket;
    if (ticket === undefined) return [{ kind: 'move-failed', reason: 'no mobility ticket' }];
    const request = new MessageBuilder(Method.Refresh, MessageClass.Request, this.#random(TRANSACTION_ID_LENGTH))
      .add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: ticket })
      .build();
    const decoded = decodeMessage(request);
    if (!decoded.ok) return [{ kind: 'move-failed', reason: 'could not build the take-over Refresh' }];
    const p: Pending = {
      internal: true,
      request: decoded.value,
      appTxid: '',
      sha1: true,
      sha256: false,
      fingerprint: true,
      attempts: 0,
      upstreamKey: undefined,
      sentAt: now,
    };
    return [this.#sendUpstream(p, now, false)];
  }

  /**
   * A Refresh with LIFETIME 0 for upstream, when the flow ends while its stream lives: a server
   * keeps a mobile allocation for a while after its connection closes (waiting for a take-over),
   * which a finished call should not hold. Its answer is not waited for.
   */
  releaseRequest(): Buffer | undefined {
    const auth = this.#upstreamAuth;
    const cred = this.#credential;
    if (this.#ticket === undefined || !auth || !cred || !this.#upstreamKey) return undefined;
    return new MessageBuilder(Method.Refresh, MessageClass.Request, this.#random(TRANSACTION_ID_LENGTH))
      .add(AttributeType.Lifetime, { kind: 'uint32', value: 0 })
      .add(AttributeType.Username, { kind: 'text', text: cred.username })
      .add(AttributeType.Realm, { kind: 'text', text: auth.realm })
      .add(AttributeType.Nonce, { kind: 'text', text: auth.nonce })
      .build({ integrityKey: this.#upstreamKey, fingerprint: true });
  }

  /** Upstream transactions still unanswered (tests, leak checks). */
  get pendingCount(): number {
    return this.#pending.size + this.#waiting.length;
  }

  /** A new upstream credential: later requests use it; requests held for one go out now. */
  setUpstreamCredential(cred: UpstreamCredential, now: number): ResignAction[] {
    this.#credential = cred;
    this.#upstreamKey = this.#upstreamAuth ? longTermKey(cred.username, this.#upstreamAuth.realm, cred.password) : undefined;
    const waiting = this.#waiting;
    this.#waiting = [];
    return waiting.map((p) => this.#sendUpstream(p, now, true));
  }

  /** A STUN message from the app (a whole datagram or TCP frame). */
  fromApp(data: Buffer, now: number): ResignAction[] {
    const r = decodeMessage(data);
    if (!r.ok) return [{ kind: 'warn', code: 'app-malformed', reason: `app sent a malformed STUN message (${r.error.reason}); dropped` }];
    const msg = r.value;
    if (msg.messageClass === MessageClass.Indication) {
      // Before the app has authenticated nothing goes upstream: an indication would open the
      // Tor stream (a circuit) for whoever can reach the shim.
      if (!this.#appAuthenticated) return [{ kind: 'warn', code: 'app-early-indication', reason: 'app sent an indication before authenticating; dropped' }];
      return [{ kind: 'to-upstream', data }];
    }
    if (msg.messageClass !== MessageClass.Request) return [];
    if (msg.method === Method.Binding) return this.#binding(msg, now);
    const refused = this.#refused(msg, now);
    if (refused) return refused;
    const appTxid = msg.transactionId.toString('hex');
    if (this.#inFlight.has(appTxid)) return []; // a UDP retransmission: the stream to upstream is reliable
    this.#expire(now);
    if (this.#inFlight.size >= this.#maxPending)
      return [{ kind: 'to-app', data: this.#auth.error(msg, ErrorCode.ServerError, 'too many requests in flight', true) }];
    const copy = decodeMessage(Buffer.from(data));
    if (!copy.ok) return [];
    const pending: Pending = {
      request: copy.value,
      appTxid,
      sha1: msg.integrityOffset >= 0,
      sha256: msg.integritySha256Offset >= 0,
      fingerprint: msg.fingerprintOffset >= 0,
      attempts: 0,
      upstreamKey: undefined,
      sentAt: now,
    };
    this.#inFlight.add(appTxid);
    // The first copy keeps the app's transaction id: a retransmitted original then maps 1:1.
    return [this.#sendUpstream(pending, now, false)];
  }

  /** A STUN message from upstream (a whole TCP frame). */
  fromUpstream(data: Buffer, now: number): ResignAction[] {
    const r = decodeMessage(data);
    if (!r.ok) return [{ kind: 'warn', code: 'upstream-malformed', reason: `upstream sent a malformed STUN message (${r.error.reason}); dropped` }];
    const msg = r.value;
    if (msg.messageClass === MessageClass.Indication) {
      if (msg.method === Method.Binding) {
        const df = getAttribute(msg, DELAY_FEEDBACK_ATTRIBUTE);
        if (df !== undefined) {
          // Ours, never the app's; a report only counts on a stream that negotiated it.
          const report = this.#delayFeedback ? decodeDelayFeedback(df.value) : undefined;
          return report === undefined ? [] : [{ kind: 'delay-report', report }];
        }
      }
      return [{ kind: 'to-app', data }];
    }
    if (msg.messageClass === MessageClass.Request) return [];
    const key = msg.transactionId.toString('hex');
    const p = this.#pending.get(key);
    // Nothing is sent upstream without a record (Binding never goes there): unknown, dropped.
    if (!p) return [];
    this.#pending.delete(key);
    if (msg.messageClass === MessageClass.ErrorResponse) {
      const code = readErrorCode(msg)?.code;
      if (code === ErrorCode.Unauthorized || code === ErrorCode.StaleNonce) return this.#challenged(p, msg, code, now);
      if (code === ErrorCode.MobilityForbidden && p.request.method === Method.Allocate && this.#askMobility) {
        // RFC 8016: this server does not allow mobility; the allocation works without it.
        this.#askMobility = false;
        return [this.#sendUpstream(p, now, true)];
      }
      if (msg.integrityOffset >= 0 || msg.integritySha256Offset >= 0) {
        const bad = this.#checkUpstreamIntegrity(p, msg);
        if (bad) return bad;
      }
    } else {
      const bad = this.#checkUpstreamIntegrity(p, msg);
      if (bad) return bad;
    }
    let negotiation: ResignAction | undefined;
    if (msg.messageClass === MessageClass.SuccessResponse) {
      this.#keepTicket(msg, p);
      if (this.#offerDelayFeedback && (p.internal || p.request.method === Method.Allocate)) {
        this.#delayFeedback = hasDelayFeedbackOffer(msg.raw);
        negotiation = this.#delayFeedback ? NEGOTIATED : DECLINED;
      }
    }
    if (p.internal) {
      if (msg.messageClass === MessageClass.SuccessResponse) return negotiation ? [negotiation, { kind: 'moved' }] : [{ kind: 'moved' }];
      const e = readErrorCode(msg);
      return [{ kind: 'move-failed', reason: `the TURN server did not take the allocation over (${e?.code ?? 0} ${e?.reason ?? ''})`.trim() }];
    }
    this.#inFlight.delete(p.appTxid);
    const toApp: ResignAction = { kind: 'to-app', data: this.#forApp(msg, p) };
    return negotiation ? [negotiation, toApp] : [toApp];
  }

  /** A ticket in an Allocate or Refresh success is the newest one. */
  #keepTicket(msg: StunMessage, p: Pending): void {
    if (p.request.method !== Method.Allocate && p.request.method !== Method.Refresh) return;
    const t = getAttribute(msg, AttributeType.MobilityTicket);
    if (t !== undefined && t.value.length > 0) this.#ticket = Buffer.from(t.value);
  }

  /** Forgets transactions upstream never answered (the shell calls this from its timer). */
  tick(now: number): void {
    this.#expire(now);
  }

  #expire(now: number): void {
    for (const [k, p] of this.#pending) {
      if (now - p.sentAt <= this.#pendingTimeoutMs) break; // insertion order = age order
      this.#pending.delete(k);
      this.#inFlight.delete(p.appTxid);
    }
  }

  // --- the app-facing server -------------------------------------------------------------

  /**
   * Answered here, never sent upstream. Without MESSAGE-INTEGRITY no credentials are asked for
   * (a TURN server answers Binding unauthenticated); with it the request is checked like any
   * other and the answer signed the same way.
   */
  #binding(msg: StunMessage, now: number): ResignAction[] {
    const app = this.#app;
    if (app === undefined) return [];
    let sign: { integrityKey: Buffer; sha1: boolean; sha256: boolean } | undefined;
    if (msg.integrityOffset >= 0 || msg.integritySha256Offset >= 0) {
      const refused = this.#refused(msg, now);
      if (refused) return refused;
      sign = this.#auth.signature(msg.integrityOffset >= 0, msg.integritySha256Offset >= 0, false);
    }
    const data = answerBinding(msg, app, sign);
    return data ? [{ kind: 'to-app', data }] : [];
  }

  /** undefined when the request authenticates locally; else what to send the app instead. */
  #refused(msg: StunMessage, now: number): ResignAction[] | undefined {
    const check = this.#auth.check(msg, this.#app, now);
    if (check.kind === 'ok') {
      this.#appAuthenticated = true;
      return undefined;
    }
    const reply: ResignAction = { kind: 'to-app', data: check.data };
    if (!check.wrongCredentials || this.#wrongReported) return [reply];
    // Once per flow: the app is misconfigured, and the user only sees that here.
    this.#wrongReported = true;
    return [reply, { kind: 'warn', code: 'app-auth', reason: WRONG_LOCAL_CREDENTIALS }];
  }

  // --- the upstream-facing client --------------------------------------------------------

  /** Builds and records the upstream copy of p; `fresh` gives it a new transaction id (a retry). */
  #sendUpstream(p: Pending, now: number, fresh: boolean): ResignAction & { kind: 'to-upstream' } {
    const txid = fresh ? this.#random(TRANSACTION_ID_LENGTH) : p.request.transactionId;
    const b = new MessageBuilder(p.request.method, MessageClass.Request, txid);
    copyAttributes(p.request, b);
    if (p.request.method === Method.Allocate && this.#askMobility && getAttribute(p.request, AttributeType.MobilityTicket) === undefined) {
      b.add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: Buffer.alloc(0) });
    }
    const auth = this.#upstreamAuth;
    const cred = this.#credential;
    let data: Buffer;
    if (auth && cred && this.#upstreamKey) {
      b.add(AttributeType.Username, { kind: 'text', text: cred.username })
        .add(AttributeType.Realm, { kind: 'text', text: auth.realm })
        .add(AttributeType.Nonce, { kind: 'text', text: auth.nonce });
      p.upstreamKey = this.#upstreamKey;
      data = b.build({ integrityKey: this.#upstreamKey, fingerprint: p.fingerprint });
    } else {
      // Realm and nonce unknown yet: the server's 401 brings them, then the signed retry follows.
      p.upstreamKey = undefined;
      data = b.build({ fingerprint: p.fingerprint });
    }
    // The delay extension's offer, as a trailer after the integrity (see @onionturn/protocol's delay-feedback.ts).
    if (this.#offerDelayFeedback && (p.internal || p.request.method === Method.Allocate)) data = withDelayFeedbackOffer(data);
    p.attempts++;
    p.sentAt = now;
    this.#pending.set(txid.toString('hex'), p);
    return { kind: 'to-upstream', data };
  }

  #challenged(p: Pending, msg: StunMessage, code: number, now: number): ResignAction[] {
    const realm = readText(msg, AttributeType.Realm);
    const nonce = readText(msg, AttributeType.Nonce);
    if (
      realm === undefined ||
      nonce === undefined ||
      p.attempts >= MAX_UPSTREAM_ATTEMPTS ||
      (code === ErrorCode.Unauthorized && p.upstreamKey !== undefined && this.#sameAuth(realm, nonce))
    ) {
      // Signed with the current realm and nonce and still refused: the credential itself is bad.
      this.#inFlight.delete(p.appTxid);
      if (p.internal) return [{ kind: 'move-failed', reason: `upstream refused the shim's credentials for the take-over (${code})` }];
      return [
        {
          kind: 'warn',
          code: 'upstream-refused',
          reason: `upstream refused the shim's credentials (${code} ${code === ErrorCode.StaleNonce ? 'Stale Nonce' : 'Unauthorized'} after ${p.attempts} attempts)`,
        },
        { kind: 'to-app', data: this.#auth.error(p.request, ErrorCode.ServerError, 'upstream refused the credentials', true) },
      ];
    }
    this.#upstreamAuth = { realm, nonce };
    const cred = this.#credential;
    this.#upstreamKey = cred ? longTermKey(cred.username, realm, cred.password) : undefined;
    if (!cred) {
      this.#waiting.push(p);
      return [];
    }
    return [this.#sendUpstream(p, now, true)];
  }

  #sameAuth(realm: string, nonce: string): boolean {
    return this.#upstreamAuth?.realm === realm && this.#upstreamAuth.nonce === nonce;
  }

  /** undefined when the response may go on; else what to do instead (drop it, say so). */
  #checkUpstreamIntegrity(p: Pending, msg: StunMessage): ResignAction[] | undefined {
    if (p.upstreamKey === undefined) {
      // An unsigned request that succeeded (a server without auth): nothing to check against.
      return undefined;
    }
    const check = verifyIntegrity(msg, p.upstreamKey);
    if (check === 'ok') return undefined;
    // A response that is not from the server we authenticated with (a tampering exit, say).
    this.#inFlight.delete(p.appTxid);
    if (p.internal) return [{ kind: 'move-failed', reason: `the take-over answer failed its integrity check (${check})` }];
    return [{ kind: 'warn', code: 'upstream-integrity', reason: `upstream response failed its integrity check (${check}); dropped` }];
  }

  #forApp(msg: StunMessage, p: Pending): Buffer {
    const b = new MessageBuilder(msg.method, msg.messageClass, p.request.transactionId);
    // The ticket the shim asked for is the shim's; an app that asked itself gets it too.
    copyAttributes(msg, b, getAttribute(p.request, AttributeType.MobilityTicket) === undefined ? AttributeType.MobilityTicket : undefined);
    return b.build(this.#auth.signature(p.sha1, p.sha256, p.fingerprint));
  }
}

/** Copies every attribute except the hop's own authentication; XOR addresses re-keyed. */
function copyAttributes(from: StunMessage, to: MessageBuilder, skip?: number): void {
  for (const a of from.attributes) {
    if (HOP_ATTRIBUTES.has(a.type) || a.type === skip) continue;
    if (XOR_ADDRESSES.has(a.type)) {
      const v = decodeAttribute(from, a);
      if (v.ok) to.add(a.type, v.value);
      continue;
    }
    to.addRaw(a.type, a.value);
  }
}
