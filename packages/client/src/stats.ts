// Counters the shell bumps (plain fields: no lookups per packet). Read by tests and the status log.
export class ShimStats {
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
