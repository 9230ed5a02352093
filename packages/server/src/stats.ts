// Counters the core bumps as plain numbers (no label lookups on the packet path); the metrics
// module reads them at scrape time.
import { DelayFeedbackCounters, QueueDrops } from '@onionturn/io';

export class CoreStats {
  allocationsCreated = 0;
  allocationsDeleted = 0;
  packetsToPeer = 0;
  bytesToPeer = 0;
  packetsToClient = 0;
  bytesToClient = 0;
  /** Peer datagrams dropped by filtering (no permission, or not a peer the client sent to). */
  droppedFiltered = 0;
  /** Client data dropped for lack of a permission or channel. */
  droppedNoPermission = 0;
  droppedBandwidth = 0;
  droppedConsent = 0;
  /** Datagrams to a peer address whose budget over all allocations was spent. */
  droppedDestination = 0;
  /** Peer datagrams too big for a Data indication (IPv6 peers, 65505 bytes or more). */
  droppedOversize = 0;
  /** Peer datagrams for a mobile allocation whose connection died, while it waits to be taken over. */
  droppedDetached = 0;
  /** --workers: connections with another worker's mobility ticket handed to that worker. */
  handedOff = 0;
  /** --workers: connections another worker handed here with a ticket of this one. */
  adopted = 0;
  /** Relayed data (or an answer) not written to a TCP/TLS client whose 1 MiB backlog was full. */
  droppedBacklog = 0;
  /** Relayed data dropped from a TCP/TLS client's writer for waiting too long (--max-queue-delay-ms). */
  readonly queueDrops = new QueueDrops();
  /** Relayed data from a client dropped on arrival: its reports showed it queued longer than --max-queue-delay-ms. */
  droppedStaleArrival = 0;
  /** The delay extension (--no-delay-feedback turns it off): negotiated connections, reports, holds, stalls. */
  readonly delayFeedback = new DelayFeedbackCounters();
  deniedPeers = 0;
  authFailures = 0;
  malformed = 0;
  /** Exceptions caught in socket handlers (bugs): the datagram or connection was dropped. */
  internalErrors = 0;
  /** Relay sockets that could not be opened for want of file descriptors (EMFILE/ENFILE). */
  fdExhausted = 0;
  /** Error responses by code. */
  readonly errors = new Map<number, number>();
  /** Quota hits by quota name. */
  readonly quotaHits = new Map<string, number>();

  countError(code: number): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  countQuota(name: string): void {
    this.quotaHits.set(name, (this.quotaHits.get(name) ?? 0) + 1);
  }
}
