// The per-flow state the Node shell drives: connect queue, activity and allocation lifetime,
// and the upstream responses that end a flow. Time is passed in; no sockets here.
import { AttributeType, ErrorCode, MessageClass, Method, decodeMessage, readAttribute, readUint32 } from '@onionturn/protocol';

/** RFC 8656 default allocation lifetime, used until the server tells us another. */
export const DEFAULT_LIFETIME_S = 600;
/** Slack on top of the lifetime before an idle flow is closed. */
export const IDLE_GRACE_S = 30;

export interface QueueLimits {
  /** Datagrams held while the upstream stream is being opened. */
  readonly maxDatagrams: number;
  readonly maxBytes: number;
}

export const DEFAULT_QUEUE_LIMITS: QueueLimits = { maxDatagrams: 64, maxBytes: 256 * 1024 };

export type FlowPhase = 'connecting' | 'open' | 'closed';

export class FlowState {
  phase: FlowPhase = 'connecting';
  /** Last time (ms) anything passed in either direction. */
  lastActivity: number;
  lifetimeS = DEFAULT_LIFETIME_S;
  /** Datagrams dropped because the connect queue was full. */
  queueDropped = 0;
  readonly #limits: QueueLimits;
  #queue: Buffer[] = [];
  #queuedBytes = 0;

  constructor(now: number, limits: QueueLimits = DEFAULT_QUEUE_LIMITS) {
    this.lastActivity = now;
    this.#limits = limits;
  }

  /** Holds a datagram until the stream is open; false (and counted) when the queue is full. */
  enqueue(datagram: Buffer): boolean {
    if (this.#queue.length >= this.#limits.maxDatagrams || this.#queuedBytes + datagram.length > this.#limits.maxBytes) {
      this.queueDropped++;
      return false;
    }
    this.#queue.push(datagram);
    this.#queuedBytes += datagram.length;
    return true;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Marks the flow open and hands over what was queued, in order. */
  open(): Buffer[] {
    this.phase = 'open';
    const q = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    return q;
  }

  /** Takes what was queued, leaving the queue empty (for a flow that will not open to answer). */
  takeQueued(): Buffer[] {
    const q = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    return q;
  }

  close(): void {
    this.phase = 'closed';
    this.#queue = [];
    this.#queuedBytes = 0;
  }

  /** No traffic for longer than the allocation lifetime: the server has dropped it too. */
  idleExpired(now: number): boolean {
    return now - this.lastActivity > (this.lifetimeS + IDLE_GRACE_S) * 1000;
  }

  /**
   * Looks at a STUN message from upstream. Allocate/Refresh successes carry the lifetime;
   * returns true when it is a Refresh success with LIFETIME 0 (the allocation is gone).
   */
  observeUpstreamStun(frame: Buffer): boolean {
    const r = decodeMessage(frame);
    if (!r.ok) return false;
    const msg = r.value;
    if (msg.messageClass === MessageClass.ErrorResponse) {
      this.#observeError(msg.method, readAttribute(msg, AttributeType.ErrorCode));
      return false;
    }
    if (msg.messageClass !== MessageClass.SuccessResponse) return false;
    if (msg.method !== Method.Allocate && msg.method !== Method.Refresh) return false;
    const lifetime = readUint32(msg, AttributeType.Lifetime);
    if (lifetime === undefined) return false;
    if (msg.method === Method.Refresh && lifetime === 0) return true;
    this.lifetimeS = lifetime;
    return false;
  }

  /** 401s from upstream; the first is the usual challenge, any later one a refused credential. */
  unauthorized = 0;
  /** Upstream's 403s to CreatePermission or ChannelBind: its peer policy refused an address. */
  peerRefused = 0;

  #observeError(method: number, attr: ReturnType<typeof readAttribute>): void {
    const code = attr?.ok && attr.value.kind === 'error-code' ? attr.value.code : undefined;
    if (code === ErrorCode.Unauthorized) this.unauthorized++;
    else if (code === ErrorCode.Forbidden && (method === Method.CreatePermission || method === Method.ChannelBind)) this.peerRefused++;
  }
}
