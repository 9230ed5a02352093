// One app flow as a pure state machine (sans-IO, after werift's TurnServerProtocol): inputs are
// what the app sent, what upstream sent, the outcome of a dial or a credential fetch, and the
// clock's tick; outputs are typed actions the adapter carries out. No sockets, no timers: time is
// passed in. A UDP flow is one app source address (datagrams); a TCP flow one app connection
// (a byte stream that already speaks TURN-over-TCP).
//
// The relay path allocates nothing per packet it can avoid: fromAppDatagram/fromAppBytes/
// fromUpstream fill one array the machine reuses (read it before the next input), and passing
// bytes on unchanged is a constant action that refers to the input.
import type { DelayReport } from '@onionturn/io';
import {
  ALLOCATE_REQUEST,
  ALLOCATE_SUCCESS,
  AttributeType,
  ErrorCode,
  FrameKind,
  HEADER_LENGTH,
  MAGIC_COOKIE,
  MessageBuilder,
  MessageClass,
  REFRESH_SUCCESS,
  StreamFramer,
  WireKind,
  channelDataPadding,
  errorCodeValue,
  hasDelayFeedbackOffer,
  isBindingIndication,
  methodOf,
  readDelayFeedbackIndication,
  wireKindOf,
  withDelayFeedbackOffer,
  withoutDelayFeedback,
  type StunMessage,
  type TransportAddress,
} from '@onionturn/protocol';
import { firstFrameVerdict, isStunRequest, paddingBytes } from './app-datagram.js';
import { answerFlowlessBinding } from './binding-answer.js';
import type { CredentialResigner, ResignAction, ResignWarning } from './credential-resigner.js';
import { DEFAULT_QUEUE_LIMITS, FlowState, type FlowPhase, type QueueLimits } from './flow-state.js';
import { MOVE_ANSWER_TIMEOUT_MS, MOVE_ATTEMPTS, MOVE_UNANSWERED } from './mobility-auth.js';
import { challengeAnswer, firstAllocate } from './ready-challenge.js';
import type { ShimStats } from './stats.js';
import type { CredentialResult } from './upstream-credentials.js';
import { WarnOnce } from './warn-once.js';

export type FlowKind = 'udp' | 'tcp';
export type LogLevel = 'debug' | 'info' | 'warn';

export type FlowAction =
  /** Open the Tor stream (the flow table picks isolation, server and turn), then call dialed(). */
  | { readonly kind: 'dial' }
  /** Local mode: fetch an upstream credential (through the flow's isolation), then call credential(). */
  | { readonly kind: 'fetch-credential' }
  /** Send the app input just given upstream, unchanged (UDP: its first `end` bytes, padded for TCP). */
  | { readonly kind: 'forward-upstream' }
  /** Send the upstream chunk just given to the app, whole (TCP pass-through). */
  | { readonly kind: 'forward-app' }
  /** Write `data`, then `pad` zero bytes, to the Tor stream. */
  | { readonly kind: 'send-upstream'; readonly data: Buffer; readonly pad: number }
  /** Send `data` (then `pad` zero bytes, TCP only) to the app: a datagram or a frame. */
  | { readonly kind: 'send-app'; readonly data: Buffer; readonly pad: number }
  /** Stop / start reading from the app (TCP: while its bytes cannot go upstream yet). */
  | { readonly kind: 'pause-app' }
  | { readonly kind: 'resume-app' }
  /** A line for the log, about this flow. */
  | { readonly kind: 'warn'; readonly reason: string }
  /**
   * Mobility: the Tor stream was lost but the allocation can be taken over. Drop the old stream,
   * open a new one on a fresh circuit (new isolation), then call redialed(). The app side stays.
   */
  | { readonly kind: 'redial' }
  /** Mobility: the allocation is on the new stream; traffic flows again. */
  | { readonly kind: 'moved' }
  /** The delay extension on the current stream: negotiated, declined, a report (see ResignAction). */
  | { readonly kind: 'delay-negotiated' }
  | { readonly kind: 'delay-declined' }
  | { readonly kind: 'delay-report'; readonly report: DelayReport }
  /** The flow is over: close both sides. The last action a machine emits. */
  | { readonly kind: 'close'; readonly reason: string; readonly level: LogLevel };

/** How the dial that a 'dial' action asked for ended. */
export type DialReport =
  /** `challenge`: the server's 401 asked for ahead on a held stream (ready-challenge.ts). */
  { readonly kind: 'open'; readonly challenge?: StunMessage | undefined } | { readonly kind: 'no-turn' } | { readonly kind: 'failed'; readonly reason: string };

export interface FlowMachineOptions {
  readonly kind: FlowKind;
  readonly now: number;
  /** Counters the machine bumps (plain fields). */
  readonly stats: ShimStats;
  readonly queueLimits?: QueueLimits;
  /** Local-credential mode: authenticates the app, re-signs towards upstream. Absent: pass-through. */
  readonly resigner?: CredentialResigner | undefined;
  /** TCP pass-through: the app's address as the shim sees it, for Binding answers (unknown: Bindings dropped). */
  readonly app?: TransportAddress | undefined;
  /**
   * UDP pass-through: offer the delay extension in the app's Allocate requests (as a trailer:
   * the app's integrity stays good), take the echo out of the answers and the reports out of
   * the stream (local mode: the resigner does this).
   */
  readonly offerDelayFeedback?: boolean;
}

/** A TCP connection that has not sent a whole first request within this long is closed. */
export const FIRST_REQUEST_TIMEOUT_MS = 10_000;
/** Refresh the upstream credential when this share of its life is left (at most REFRESH_MARGIN_MS). */
const REFRESH_SHARE = 1 / 5;
const REFRESH_MARGIN_MS = 5 * 60_000;
/** A failed refresh is tried again after this long. */
const REFRESH_RETRY_MS = 30_000;
/** Bytes of a TCP stream's start that decide whether it may open a Tor stream. */
const HEAD_BYTES = 8;
const EMPTY = Buffer.alloc(0);

const DIAL: FlowAction = Object.freeze({ kind: 'dial' });
const FETCH_CREDENTIAL: FlowAction = Object.freeze({ kind: 'fetch-credential' });
const FORWARD_UPSTREAM: FlowAction = Object.freeze({ kind: 'forward-upstream' });
const DELAY_NEGOTIATED: FlowAction = Object.freeze({ kind: 'delay-negotiated' });
const DELAY_DECLINED: FlowAction = Object.freeze({ kind: 'delay-declined' });
const FORWARD_APP: FlowAction = Object.freeze({ kind: 'forward-app' });
const PAUSE_APP: FlowAction = Object.freeze({ kind: 'pause-app' });
const RESUME_APP: FlowAction = Object.freeze({ kind: 'resume-app' });
const REDIAL: FlowAction = Object.freeze({ kind: 'redial' });
const MOVED: FlowAction = Object.freeze({ kind: 'moved' });
const NONE: readonly FlowAction[] = Object.freeze([]);

export class FlowMachine {
  readonly kind: FlowKind;
  /** Connect queue (UDP), activity and allocation lifetime. */
  readonly state: FlowState;
  readonly #stats: ShimStats;
  readonly #resigner: CredentialResigner | undefined;
  readonly #app: TransportAddress | undefined;
  /** What upstream sends, framed (ChannelData without TCP padding); reset for a new stream. */
  readonly #upFramer: StreamFramer;
  /** TCP: what the app sends, framed (its first frame decides; local mode re-signs STUN). */
  readonly #appFramer: StreamFramer | undefined;
  /** The reused output of the relay-path inputs; #cur is where the framers' callbacks write. */
  readonly #out: FlowAction[] = [];
  #cur: FlowAction[] = this.#out;
  /** send-app actions of #out, reused (one per frame of an upstream chunk, none allocated per packet). */
  readonly #sendApps: { kind: 'send-app'; data: Buffer; pad: number }[] = [];
  #sendAppsUsed = 0;
  #now: number;
  #dialStarted = false;
  /** Set by a Refresh-to-0 success: close once the response is delivered. */
  #released = false;
  #closeReason: string | undefined;
  /** TCP: the first bytes until they show a STUN request; undefined from then on. */
  #head: Buffer | undefined = EMPTY;
  /** TCP: the first frame (a STUN request) has arrived whole. */
  #sawRequest = false;
  /** TCP: bytes for upstream while its stream is being opened (the app is paused meanwhile). */
  #held: Buffer[] = [];
  /** TCP pass-through: the app's first request, from when it dials until its stream opens. */
  #firstRequest: Buffer | undefined;
  #refreshing = false;
  /** Mobility: between a lost stream and the take-over's answer; app input for upstream is dropped. */
  #moving = false;
  /** Mobility: new streams tried for the current take-over. */
  #moveAttempts = 0;
  /** Mobility: when the take-over Refresh went on the new stream, or it last read anything there (undefined while dialing). */
  #moveSentAt: number | undefined;
  /** The Tor stream is gone for good: nothing more is written to it. */
  #upstreamGone = false;
  #credentialObtainedAt = 0;
  #lastRefreshAttempt = 0;
  /** Resigner warnings: each kind logged once per flow, the rest counted. */
  readonly #warnings = new WarnOnce<ResignWarning>();
  /** UDP pass-through: see FlowMachineOptions.offerDelayFeedback; then whether the stream negotiated it. */
  readonly #passDelayFeedback: boolean;
  #delayFeedback = false;

  constructor(opts: FlowMachineOptions) {
    this.kind = opts.kind;
    this.#stats = opts.stats;
    this.#resigner = opts.resigner;
    this.#app = opts.app;
    this.#now = opts.now;
    this.#passDelayFeedback = opts.offerDelayFeedback === true && opts.kind === 'udp' && opts.resigner === undefined;
    this.state = new FlowState(opts.now, opts.queueLimits ?? DEFAULT_QUEUE_LIMITS);
    this.#upFramer = new StreamFramer(this.#onUpstreamFrame.bind(this), { rfc5766Channels: true });
    this.#appFramer = opts.kind === 'tcp' ? new StreamFramer(this.#onAppFrame.bind(this), { rfc5766Channels: true }) : undefined;
  }

  get phase(): FlowPhase {
    return this.state.phase;
  }

  /** A method, so TypeScript does not narrow the phase across awaits and callbacks. */
  isClosed(): boolean {
    return this.state.phase === 'closed';
  }

  get closeReason(): string | undefined {
    return this.#closeReason;
  }

  /** Resigner warnings not logged because their kind had been logged on this flow before. */
  get warningsNotLogged(): number {
    return this.#warnings.suppressed;
  }

  /**
   * The flow exists. A UDP flow in pass-through dials at once; a TCP flow waits for its first
   * request, and local mode for the app's first authenticated request (a wrong password costs no
   * circuit).
   */
  start(): readonly FlowAction[] {
    if (this.kind === 'tcp' || this.#resigner) return NONE;
    const out: FlowAction[] = [];
    this.#dial(out);
    return out;
  }

  /** UDP: an app datagram already checked by messageEnd(); `end` is its length without padding. */
  fromAppDatagram(datagram: Buffer, end: number, now: number): readonly FlowAction[] {
    const out = this.#begin(now);
    if (this.isClosed()) return out;
    this.state.lastActivity = now;
    if (this.#moving) {
      this.#stats.gapDropped++;
      return out;
    }
    const resigner = this.#resigner;
    if (resigner && wireKindOf(datagram[0] as number) === WireKind.Stun) {
      // Local mode: STUN goes through the resigner (end === length for STUN).
      this.#resign(out, resigner.fromApp(datagram, now));
    } else if (this.#passDelayFeedback && end >= HEADER_LENGTH && datagram.readUInt16BE(0) === ALLOCATE_REQUEST) {
      const offered = withDelayFeedbackOffer(datagram.subarray(0, end));
      if (this.state.phase === 'open') out.push({ kind: 'send-upstream', data: offered, pad: 0 });
      else if (!this.state.enqueue(offered)) this.#stats.queueDropped++;
    } else if (this.state.phase === 'open') out.push(FORWARD_UPSTREAM);
    else if (!this.state.enqueue(end === datagram.length ? datagram : datagram.subarray(0, end))) {
      // Trimmed when queued, so the queue holds exactly what will be written.
      this.#stats.queueDropped++;
    }
    return out;
  }

  /** TCP: a chunk of the app's byte stream. */
  fromAppBytes(chunk: Buffer, now: number): readonly FlowAction[] {
    const out = this.#begin(now);
    if (this.isClosed()) return out;
    this.state.lastActivity = now;
    if (this.#head !== undefined && !this.#checkHead(out, chunk)) return out;
    // Pass-through before the dial: the chunk is held before it is framed, so a Binding in it,
    // answered here, can be cut out of what will go upstream (#onAppFrame).
    const heldBefore = !this.#resigner && !this.#dialStarted;
    if (heldBefore) this.#held.push(chunk);
    const err = (this.#appFramer as StreamFramer).push(chunk);
    if (this.isClosed()) return out;
    if (err) {
      this.#close(out, `app sent data that is not TURN (${err.reason})`, 'warn');
      return out;
    }
    if (this.#resigner) return out; // frames went out one by one from #onAppFrame
    if (this.state.phase === 'open') {
      out.push(FORWARD_UPSTREAM);
      return out;
    }
    // Before the stream is open: the first frame (perhaps still partial) and what followed it.
    if (!heldBefore) this.#held.push(chunk);
    if (this.#dialStarted) out.push(PAUSE_APP);
    return out;
  }

  /** A chunk of the Tor stream. */
  fromUpstream(chunk: Buffer, now: number): readonly FlowAction[] {
    const out = this.#begin(now);
    if (this.isClosed()) return out;
    this.state.lastActivity = now;
    // The take-over's stream answers (a 438 to a Refresh signed with the old nonce, say): it is
    // not stalled, and the resent Refresh gets its own MOVE_ANSWER_TIMEOUT_MS.
    if (this.#moveSentAt !== undefined) this.#moveSentAt = now;
    const err = this.#upFramer.push(chunk);
    if (this.isClosed()) return out;
    if (err) {
      this.#close(out, `upstream sent data that is not TURN (${err.reason})`, 'warn');
      return out;
    }
    if (this.kind === 'tcp' && !this.#resigner) out.push(FORWARD_APP);
    if (this.#released) this.#close(out, 'allocation released (Refresh with lifetime 0)', 'info');
    return out;
  }

  /** The flow's turn to dial has come and its isolation is chosen. */
  turnGranted(): readonly FlowAction[] {
    if (!this.#resigner || this.isClosed()) return NONE;
    // The credential is fetched alongside the dial, through the same isolation (the same circuit).
    const out: FlowAction[] = [];
    this.#fetch(out);
    return out;
  }

  dialed(report: DialReport): readonly FlowAction[] {
    // A report for a dial this flow never asked for is not about it (the fuzzer found a TCP app's
    // held bytes flushed by one, then a Binding cut out of bytes no longer held: a crash).
    if (this.isClosed() || !this.#dialStarted) return NONE;
    const out: FlowAction[] = [];
    if (report.kind === 'no-turn') {
      this.#refuseQueued(out, ErrorCode.InsufficientCapacity);
      this.#close(out, 'no turn to open a Tor stream in time (new flows came faster than --new-flows-per-second)', 'debug');
    } else if (report.kind === 'failed') {
      this.#stats.upstreamFailures++;
      this.#refuseQueued(out, ErrorCode.ServerError);
      this.#close(out, `no upstream stream: ${report.reason}`, 'warn');
    } else {
      const resigner = this.#resigner;
      const held = report.challenge;
      // Local mode: the resigner signs with the held stream's 401 what it made unsigned meanwhile.
      // Pass-through: the app's first Allocate is answered with that 401 instead.
      if (resigner && held) resigner.useChallenge(held);
      const challenge = resigner ? undefined : held;
      const sign = (d: Buffer): Buffer | undefined => (resigner && held ? resigner.signQueued(d, this.#now) : d);
      if (this.kind === 'udp') {
        let answered = false;
        for (const queued of this.state.open()) {
          const d = sign(queued);
          if (d === undefined) continue;
          const first = challenge && firstAllocate(d);
          if (first) {
            out.push(this.#answerChallenge(challenge, first));
            answered = true;
          } else out.push({ kind: 'send-upstream', data: d, pad: channelDataPadding(d.length) });
        }
        // One challenge used, however often the app retransmitted its Allocate meanwhile.
        if (answered) this.#stats.readyChallengesUsed++;
        return out;
      }
      this.state.open();
      // The first request (#beforeDial) starts the held bytes: answered here when the challenge fits it.
      const first = challenge && this.#firstRequest && firstAllocate(this.#firstRequest);
      if (first) {
        this.#dropHeld(first.raw.length);
        out.push(this.#answerChallenge(challenge, first));
        this.#stats.readyChallengesUsed++;
      }
      this.#firstRequest = undefined;
      const bytes = this.#held;
      this.#held = [];
      for (const queued of bytes) {
        const b = sign(queued);
        if (b !== undefined) out.push({ kind: 'send-upstream', data: b, pad: 0 });
      }
      out.push(RESUME_APP);
    }
    return out;
  }

  /**
   * A UDP flow that will not open: the app's queued requests (its Allocate and the retransmissions
   * of it) get an error answer now (500: no Tor stream; 508: no turn to open one), so the app fails
   * at once instead of retransmitting for ~40 s (RFC 8489 §6.2.1) into a flow that is gone. Unsigned:
   * the shim has no key in pass-through mode, and the first Allocate carries none anyway. A TCP app
   * learns it from its connection closing.
   */
  #refuseQueued(out: FlowAction[], code: number): void {
    if (this.kind !== 'udp') return;
    const answered = new Set<string>();
    for (const d of this.state.takeQueued()) {
      if (d.length < HEADER_LENGTH || d.readUInt32BE(4) !== MAGIC_COOKIE || !isStunRequest(d)) continue;
      const id = d.subarray(8, HEADER_LENGTH);
      const key = id.toString('hex');
      if (answered.has(key)) continue; // a retransmission: one answer per transaction
      answered.add(key);
      const answer = new MessageBuilder(methodOf(d.readUInt16BE(0)), MessageClass.ErrorResponse, Buffer.from(id))
        .add(AttributeType.ErrorCode, errorCodeValue(code))
        .build();
      out.push({ kind: 'send-app', data: answer, pad: 0 });
    }
  }

  /**
   * Pass-through: the app's first Allocate (no credentials) answered with the server's 401 that
   * the shim asked for ahead on this stream, so its signed Allocate is the first request upstream.
   */
  #answerChallenge(challenge: StunMessage, request: StunMessage): FlowAction {
    return { kind: 'send-app', data: challengeAnswer(challenge, request), pad: 0 };
  }

  /** Local mode: the outcome of a 'fetch-credential'. */
  credential(r: CredentialResult, now: number): readonly FlowAction[] {
    this.#refreshing = false;
    const resigner = this.#resigner;
    if (!resigner || this.isClosed()) return NONE;
    const out: FlowAction[] = [];
    if (!r.ok) {
      if (resigner.hasCredential) {
        // The old one still works for a while; a later tick tries again.
        out.push({ kind: 'warn', reason: `could not refresh the upstream credential: ${r.error.reason}` });
      } else {
        this.#stats.upstreamFailures++;
        this.#stats.credentialFailures++;
        this.#close(out, `no upstream credential: ${r.error.reason}`, 'warn');
      }
      return out;
    }
    this.#credentialObtainedAt = now;
    this.#resign(out, resigner.setUpstreamCredential(r.value, now));
    return out;
  }

  /** The clock's tick: idle flows close; local mode forgets stale transactions, refreshes its credential. */
  tick(now: number): readonly FlowAction[] {
    if (this.isClosed()) return NONE;
    this.#now = now;
    const out: FlowAction[] = [];
    // A TCP connection that never sends a whole request holds a flow slot: not for long.
    const idle = this.kind === 'tcp' && !this.#sawRequest ? now - this.state.lastActivity > FIRST_REQUEST_TIMEOUT_MS : this.state.idleExpired(now);
    if (idle) {
      this.#close(out, 'idle for longer than the allocation lifetime', 'info');
      return out;
    }
    const resigner = this.#resigner;
    if (!resigner) return out;
    if (this.#moveSentAt !== undefined && now - this.#moveSentAt >= MOVE_ANSWER_TIMEOUT_MS) {
      out.push(...this.#lost(MOVE_UNANSWERED, 'warn'));
      return out;
    }
    resigner.tick(now);
    const expiresAt = resigner.credentialExpiresAt;
    if (expiresAt === undefined) return out;
    const margin = Math.min(REFRESH_MARGIN_MS, (expiresAt - this.#credentialObtainedAt) * REFRESH_SHARE);
    if (expiresAt - now < margin && now - this.#lastRefreshAttempt > REFRESH_RETRY_MS) {
      this.#lastRefreshAttempt = now;
      this.#fetch(out);
    }
    return out;
  }

  upstreamEnded(): readonly FlowAction[] {
    return this.#lost('upstream closed the stream', 'info');
  }

  /** The Tor stream failed; `code` names how (an errno code, never an address). */
  upstreamFailed(code: string): readonly FlowAction[] {
    return this.#lost(`upstream stream failed: ${code}`, 'warn');
  }

  /**
   * The Tor stream stalled: the delay extension's reports acknowledged nothing new for `stalledMs`
   * while data waited (a relay that neither forwards nor closes the circuit). Where mobility can, a
   * new stream on a fresh circuit takes the allocation over, as for a lost one; otherwise nothing
   * (the stall may end; it is counted, and the app's own consent checks give up on a dead path).
   */
  upstreamStalled(stalledMs: number): readonly FlowAction[] {
    if (this.isClosed() || this.#moving || this.state.phase !== 'open' || !this.#resigner?.movable) return NONE;
    this.#stats.stalledStreamsMoved++;
    return this.#lost(`upstream stream stalled: nothing acknowledged for ${(stalledMs / 1000).toFixed(1)} s while data waited`, 'warn');
  }

  /** Mobility: how the 'redial' ended; an open stream gets the take-over Refresh. */
  redialed(report: DialReport, now: number): readonly FlowAction[] {
    if (this.isClosed() || !this.#moving) return NONE;
    this.#now = now;
    const out: FlowAction[] = [];
    if (report.kind !== 'open') {
      this.#stats.upstreamFailures++;
      this.#close(out, `mobility failed: no new Tor stream (${report.kind === 'failed' ? report.reason : 'no turn in time'})`, 'warn');
      return out;
    }
    const resigner = this.#resigner as CredentialResigner;
    if (report.challenge) resigner.useChallenge(report.challenge);
    this.#moveSentAt = now;
    this.#resign(out, resigner.moveRequest(now));
    return out;
  }

  /**
   * The Tor stream is gone. Local mode with a mobility ticket: a new stream takes the allocation
   * over (RFC 8016) and the app keeps its connection; otherwise the flow ends.
   */
  #lost(reason: string, level: LogLevel): readonly FlowAction[] {
    if (this.isClosed()) return NONE;
    const again = this.#moving;
    if ((again && this.#moveAttempts >= MOVE_ATTEMPTS) || this.state.phase !== 'open' || !this.#resigner?.movable) {
      this.#upstreamGone = true;
      return this.close(reason, level);
    }
    this.#moveAttempts = again ? this.#moveAttempts + 1 : 1;
    this.#moving = true;
    this.#moveSentAt = undefined;
    if (!again) this.#stats.streamsMoved++;
    this.#upFramer.reset();
    this.#held = [];
    const what = again ? "the take-over's new stream is gone too: another circuit" : 'taking the allocation over on a new circuit';
    return [{ kind: 'warn', reason: `${reason}: ${what}` }, REDIAL];
  }

  appEnded(): readonly FlowAction[] {
    return this.close('app closed the connection');
  }

  /** Ends the flow from outside (shim stopping, an app that does not read). */
  close(reason: string, level: LogLevel = 'info'): readonly FlowAction[] {
    if (this.isClosed()) return NONE;
    const out: FlowAction[] = [];
    this.#close(out, reason, level);
    return out;
  }

  #begin(now: number): FlowAction[] {
    this.#now = now;
    const out = this.#out;
    out.length = 0;
    // Let go of the last input's frames (views of a chunk that may be 64 KiB).
    for (let i = 0; i < this.#sendAppsUsed; i++) (this.#sendApps[i] as { data: Buffer }).data = EMPTY;
    this.#sendAppsUsed = 0;
    this.#cur = out;
    return out;
  }

  #dial(out: FlowAction[]): void {
    if (this.#dialStarted) return;
    this.#dialStarted = true;
    out.push(DIAL);
  }

  #fetch(out: FlowAction[]): void {
    if (this.#refreshing) return;
    this.#refreshing = true;
    out.push(FETCH_CREDENTIAL);
  }

  #close(out: FlowAction[], reason: string, level: LogLevel): void {
    if (this.isClosed()) return;
    // A mobile allocation would outlive the stream on the server (waiting to be taken over): released.
    const release = this.state.phase === 'open' && !this.#moving && !this.#upstreamGone && !this.#released ? this.#resigner?.releaseRequest() : undefined;
    if (release) out.push({ kind: 'send-upstream', data: release, pad: 0 });
    this.#closeReason = reason;
    this.state.close();
    this.#held = [];
    out.push({ kind: 'close', reason, level });
  }

  /** TCP: false (and the flow closed) when the stream's first bytes are no STUN request. */
  #checkHead(out: FlowAction[], chunk: Buffer): boolean {
    const have = this.#head as Buffer;
    const head = have.length === 0 && chunk.length >= HEAD_BYTES ? chunk : Buffer.concat([have, chunk.subarray(0, HEAD_BYTES - have.length)]);
    const v = firstFrameVerdict(head);
    if (v.kind === 'refuse') {
      this.#stats.appRefused++;
      // Debug only: any web page can make these, one per fetch; the counter tells the story.
      this.#close(out, `app sent data that is not TURN (${v.reason})`, 'debug');
      return false;
    }
    this.#head = v.kind === 'wait' ? head : undefined;
    return true;
  }

  #onAppFrame(frame: Buffer, kind: FrameKind): void {
    if (this.isClosed()) return;
    const out = this.#cur;
    const resigner = this.#resigner;
    if (!resigner) {
      if (!this.#dialStarted) this.#beforeDial(out, frame, kind);
      return;
    }
    // #checkHead let only a STUN request through, so this first whole frame is one.
    this.#sawRequest = true;
    if (this.#moving) {
      this.#stats.gapDropped++;
      return;
    }
    if (kind === FrameKind.Stun) this.#resign(out, resigner.fromApp(frame, this.#now));
    else if (this.state.phase === 'open') out.push({ kind: 'send-upstream', data: frame, pad: channelDataPadding(frame.length) });
    else if (this.#dialStarted) {
      this.#held.push(frame);
      const pad = channelDataPadding(frame.length);
      if (pad > 0) this.#held.push(paddingBytes(pad));
      out.push(PAUSE_APP);
    }
    // No channel can exist before the app has authenticated and upstream has answered.
    else this.#close(out, 'app sent ChannelData before it was authenticated', 'debug');
  }

  /**
   * TCP pass-through, a whole frame before anything was dialed (#checkHead made the first one a
   * STUN request). A Binding is answered here as over UDP (binding-answer.ts): any web page can
   * send one, and it must cost no circuit nor learn the exit's address. It is cut out of the held
   * bytes (the frame is their start: all before it were Bindings, cut out too). The first other
   * request dials and goes upstream with all that follows it.
   */
  #beforeDial(out: FlowAction[], frame: Buffer, kind: FrameKind): void {
    if (kind !== FrameKind.Stun || !isStunRequest(frame)) {
      this.#close(out, 'app sent something other than a STUN request before any was forwarded', 'debug');
      return;
    }
    const v = answerFlowlessBinding(frame, this.#app);
    if (v.kind === 'other') {
      this.#sawRequest = true;
      // A copy: the framer's frames may be views of its own buffer.
      this.#firstRequest = Buffer.from(frame);
      this.#dial(out);
      return;
    }
    this.#dropHeld(frame.length);
    if (v.kind === 'answer') {
      this.#stats.bindingsAnswered++;
      out.push({ kind: 'send-app', data: v.data, pad: 0 });
    } else this.#stats.orphanDropped++;
  }

  /** Drops the first `n` held bytes (a STUN frame: no padding follows it). */
  #dropHeld(n: number): void {
    const held = this.#held;
    while (n > 0) {
      const b = held[0] as Buffer;
      if (b.length <= n) {
        n -= b.length;
        held.shift();
      } else {
        held[0] = b.subarray(n);
        n = 0;
      }
    }
  }

  #onUpstreamFrame(frame: Buffer, kind: FrameKind): void {
    if (this.isClosed()) return;
    const out = this.#cur;
    if (kind === FrameKind.Stun) {
      const state = this.state;
      const { unauthorized, peerRefused } = state;
      if (state.observeUpstreamStun(frame)) this.#released = true;
      // The status page's test call names the failed step from these.
      if (state.unauthorized > unauthorized && state.unauthorized > 1) this.#stats.turnAuthRefused++;
      if (state.peerRefused > peerRefused) this.#stats.peerRefused++;
    }
    const resigner = this.#resigner;
    if (kind === FrameKind.Stun && resigner) this.#resign(out, resigner.fromUpstream(frame, this.#now));
    else if (this.kind === 'udp') {
      if (kind === FrameKind.Stun && this.#passDelayFeedback) {
        const passed = this.#passUpstream(out, frame);
        if (passed !== undefined) out.push(this.#sendApp(out, passed));
      } else out.push(this.#sendApp(out, frame));
    }
    // TCP local mode frame by frame (padded as TCP wants); pass-through forwards whole chunks.
    else if (resigner) out.push({ kind: 'send-app', data: frame, pad: channelDataPadding(frame.length) });
  }

  /**
   * UDP pass-through with the delay extension offered: a STUN frame from upstream as the app
   * should get it (the echo taken out), or undefined when it is the shim's (a report).
   */
  #passUpstream(out: FlowAction[], frame: Buffer): Buffer | undefined {
    const type = frame.readUInt16BE(0);
    if (isBindingIndication(frame)) {
      const report = readDelayFeedbackIndication(frame);
      if (report === undefined) return frame;
      if (this.#delayFeedback) out.push({ kind: 'delay-report', report });
      return undefined;
    }
    if (type !== ALLOCATE_SUCCESS && type !== REFRESH_SUCCESS) return frame;
    if (hasDelayFeedbackOffer(frame)) {
      if (!this.#delayFeedback) out.push(DELAY_NEGOTIATED);
      this.#delayFeedback = true;
      return withoutDelayFeedback(frame);
    }
    if (type === ALLOCATE_SUCCESS) {
      this.#delayFeedback = false;
      out.push(DELAY_DECLINED);
    }
    return frame;
  }

  /** A send-app action without padding; on the relay path a reused one. */
  #sendApp(out: FlowAction[], data: Buffer): FlowAction {
    if (out !== this.#out) return { kind: 'send-app', data, pad: 0 };
    let a = this.#sendApps[this.#sendAppsUsed];
    if (a === undefined) {
      a = { kind: 'send-app', data, pad: 0 };
      this.#sendApps.push(a);
    } else a.data = data;
    this.#sendAppsUsed++;
    return a;
  }

  /** Carries out what the resigner decided. */
  #resign(out: FlowAction[], actions: readonly ResignAction[]): void {
    for (const a of actions) {
      if (this.isClosed()) return;
      if (a.kind === 'to-app') out.push({ kind: 'send-app', data: a.data, pad: 0 });
      else if (a.kind === 'to-upstream') this.#toUpstream(out, a.data);
      else if (a.kind === 'moved') {
        this.#moving = false;
        this.#moveSentAt = undefined;
        out.push(MOVED);
      } else if (a.kind === 'delay-negotiated' || a.kind === 'delay-declined' || a.kind === 'delay-report') out.push(a);
      else if (a.kind === 'move-failed') this.#close(out, `mobility failed: ${a.reason}; was the server restarted?`, 'warn');
      else {
        this.#stats.resignWarnings++;
        if (this.#warnings.first(a.code)) out.push({ kind: 'warn', reason: `${a.reason} (further ones on this flow are counted, not logged)` });
      }
    }
  }

  /**
   * Local mode: a STUN message the resigner made for upstream. The app has authenticated (the
   * resigner sends nothing upstream before), so now the Tor stream is worth a circuit.
   */
  #toUpstream(out: FlowAction[], data: Buffer): void {
    if (this.state.phase === 'open') {
      out.push({ kind: 'send-upstream', data, pad: 0 });
      return;
    }
    if (this.kind === 'udp') {
      if (!this.state.enqueue(data)) this.#stats.queueDropped++;
    } else {
      this.#held.push(data);
      out.push(PAUSE_APP);
    }
    this.#dial(out);
  }
}
