// Counters the shell bumps (plain fields: no lookups per packet). Read by tests, the status page
// and /metrics.
import { DelayFeedbackCounters, QueueDrops } from '@onionturn/io';

/**
 * The flow kinds the status page and /metrics name. Open: a new kind (a SOCKS UDP association, a
 * UDP forward) is one more entry here and one `stats.kind(...)` where its flows are made.
 */
export const FLOW_KIND_LABELS: Readonly<Record<string, string>> = {
  'turn-udp': 'TURN over UDP',
  'turn-tcp': 'TURN over TCP',
  'socks-udp': 'SOCKS5 UDP',
  'udp-forward': 'UDP forward',
};

/** One flow kind's counters; a flow holds a reference to its kind's, so the relay path looks nothing up. */
export class KindCounters {
  opened = 0;
  closed = 0;
  /** Bytes written to the Tor stream (app to server) and read from it (server to app). */
  bytesToServer = 0;
  bytesToApp = 0;

  get open(): number {
    return this.opened - this.closed;
  }
}

/** Why a dial failed, by the UpstreamErrorCode (the status page's test call names the step from it). */
export type DialFailures = Record<string, number>;

/** Kinds of datagram flows that arrive without TURN (the shim is the TURN client for them). */
export type DatagramFlowKind = 'socks-udp' | 'udp-forward';
export const DATAGRAM_FLOW_KINDS: readonly DatagramFlowKind[] = ['socks-udp', 'udp-forward'];

/** Why an app datagram of such a flow was dropped (each a counter; new reasons are new keys). */
export type DatagramDropReason =
  | 'foreign-source'
  | 'fragmented'
  | 'bad-header'
  | 'oversized'
  | 'queue-full'
  | 'backlog-full'
  | 'too-many-peers'
  | 'peer-refused'
  | 'resolve-failed'
  | 'no-route'
  /** While a lost Tor stream is replaced (TURN mobility): dropped, not queued. */
  | 'stream-gap'
  | 'closed';

/** One kind of datagram flow (an association, or one source of a forward). */
export class DatagramFlowStats extends KindCounters {
  datagramsToUpstream = 0;
  datagramsToApp = 0;
  /** By destination route: IP (TURN at the exit-side server), a name resolved by Tor, an onion service. */
  readonly routes = { ip: 0, hostname: 0, onion: 0 };
  readonly dropped: Record<DatagramDropReason, number> = {
    'foreign-source': 0,
    fragmented: 0,
    'bad-header': 0,
    oversized: 0,
    'queue-full': 0,
    'backlog-full': 0,
    'too-many-peers': 0,
    'peer-refused': 0,
    'resolve-failed': 0,
    'no-route': 0,
    'stream-gap': 0,
    closed: 0,
  };

  toJSON(): Record<string, unknown> {
    return {
      opened: this.opened,
      closed: this.closed,
      active: this.open,
      bytesToServer: this.bytesToServer,
      bytesToApp: this.bytesToApp,
      datagramsToUpstream: this.datagramsToUpstream,
      datagramsToApp: this.datagramsToApp,
      routes: { ...this.routes },
      dropped: { ...this.dropped },
    };
  }
}

export class ShimStats {
  readonly #kinds = new Map<string, KindCounters>();

  /** The counters of one flow kind (made on first use, kept: they are totals). */
  kind(name: string): KindCounters {
    let k = this.#kinds.get(name);
    if (k === undefined) {
      k = new KindCounters();
      this.#kinds.set(name, k);
    }
    return k;
  }

  /** Every kind seen so far, in the order they were first used. */
  get kinds(): ReadonlyMap<string, KindCounters> {
    return this.#kinds;
  }

  /** A datagram flow kind: its counters are the kind's, so the status page and /metrics see them too. */
  #datagramKind(name: DatagramFlowKind): DatagramFlowStats {
    const k = new DatagramFlowStats();
    this.#kinds.set(name, k);
    return k;
  }

  /** SOCKS UDP associations and UDP forwards, by kind (keys of DATAGRAM_FLOW_KINDS). */
  readonly datagramFlows: Readonly<Record<DatagramFlowKind, DatagramFlowStats>> = {
    'socks-udp': this.#datagramKind('socks-udp'),
    'udp-forward': this.#datagramKind('udp-forward'),
  };
  /** SOCKS front end: control connections refused (no acceptable method, a bad request, CONNECT/BIND...). */
  socksRefused = 0;
  /** Host names resolved through Tor (RESOLVE) and answered from the cache. */
  torResolves = 0;
  resolveCacheHits = 0;
  /** Failed dials by UpstreamErrorCode. */
  readonly dialFailures: DialFailures = {};
  /** Local mode: flows closed because no upstream credential could be had (the credential URL failed). */
  credentialFailures = 0;
  /** Upstream refused an authenticated request with 401 (wrong or expired TURN credentials). */
  turnAuthRefused = 0;
  /** Upstream refused a CreatePermission or ChannelBind with 403 (its peer policy). */
  peerRefused = 0;

  flowsOpened = 0;
  flowsClosed = 0;
  upstreamFailures = 0;
  /** Tor streams lost mid-flow whose allocation was taken over on a new stream (TURN mobility, tried). */
  streamsMoved = 0;
  /** Of those, streams given up for stalling (the delay extension's reports acknowledged nothing new while data waited). */
  stalledStreamsMoved = 0;
  /** Flows that started on a Tor stream held ready ahead of need (no circuit to wait for). */
  readyStreamsUsed = 0;
  /** App first Allocates (no credentials) answered with the server's 401 asked for ahead on a held stream. */
  readyChallengesUsed = 0;
  /** App datagrams and frames for upstream dropped while a lost stream was being replaced. */
  gapDropped = 0;
  /** Datagrams dropped because the connect queue of their flow was full. */
  queueDropped = 0;
  /** Datagrams dropped because the upstream stream's send buffer was full. */
  backlogDropped = 0;
  /** Datagrams dropped from an upstream stream's writer for waiting too long (--max-queue-delay-ms). */
  readonly queueDrops = new QueueDrops();
  /** Datagrams from the server dropped on arrival: its delay reports showed they queued longer than --max-queue-delay-ms. */
  staleArrivalDropped = 0;
  /** The delay extension with the server: streams that negotiated it, reports, holds, stalls. */
  readonly delayFeedback = new DelayFeedbackCounters();
  /** App datagrams that were neither STUN nor ChannelData, or came from port 0. */
  notTurnDropped = 0;
  /** App TCP connections closed before any dial: their first bytes were no STUN request (HTTP, say). */
  appRefused = 0;
  /** App datagrams from a source with no flow that cannot open one (not a STUN request). */
  orphanDropped = 0;
  /** Local mode: Binding requests from sources without a flow, answered by the shim itself. */
  bindingsAnswered = 0;
  /**
   * Local mode: requests from sources without a flow that did not authenticate (no integrity,
   * a stale or foreign nonce, a missing attribute, a wrong user or password), answered with no flow.
   */
  challengesAnswered = 0;
  /** Local mode: of challengesAnswered, the ones signed with a wrong local user or password. */
  authFailures = 0;
  /** Local mode: authenticated requests other than Allocate from sources without a flow, answered 437. */
  noAllocationAnswered = 0;
  /** Flows refused because the flow limit was reached. */
  flowLimitRefused = 0;
  /** Flows that waited for their turn to dial: new Tor streams came faster than the rate allows. */
  dialsDelayed = 0;
  /** Of those, flows closed without dialing: their wait was longer than the shim allows. */
  dialRateRefused = 0;
  /** Local-credential mode: messages dropped or refused by the resigner (the first of each kind per flow logged). */
  resignWarnings = 0;
  /** Exceptions caught in the UDP listener's handler (bugs): the datagram was dropped. */
  internalErrors = 0;
}
