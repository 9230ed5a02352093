// Counters the shell bumps (plain fields: no lookups per packet). Read by tests, the status page
// and /metrics.

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
  /** Datagrams dropped because the connect queue of their flow was full. */
  queueDropped = 0;
  /** Datagrams dropped because the upstream stream's send buffer was full. */
  backlogDropped = 0;
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
