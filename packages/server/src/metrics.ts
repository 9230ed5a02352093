// Prometheus metrics (prom-client). Values are read from the core's plain counters at scrape
// time, so the relay path pays nothing for them. No per-username label, ever.
import { createServer, type Server } from 'node:http';
import { Gauge, Registry } from 'prom-client';
import { listenOn } from '@onionturn/io';
import { totalsCounter } from './totals-counter.js';
import type { TurnCore } from './turn-core.js';

export function createMetricsRegistry(core: TurnCore): Registry {
  const registry = new Registry();
  const s = core.stats;
  new Gauge({
    name: 'onionturn_allocations',
    help: 'Allocations currently held',
    registers: [registry],
    collect() {
      this.set(core.allocationCount);
    },
  });
  const counter = (name: string, help: string, read: () => number): void => totalsCounter(registry, name, help, [], () => [[[], read()]]);
  counter('onionturn_allocations_created_total', 'Allocations created', () => s.allocationsCreated);
  counter('onionturn_allocations_deleted_total', 'Allocations deleted', () => s.allocationsDeleted);
  counter('onionturn_auth_failures_total', 'Requests that failed authentication', () => s.authFailures);
  counter('onionturn_denied_peers_total', 'Peer addresses refused by the peer policy', () => s.deniedPeers);
  counter('onionturn_malformed_total', 'Malformed messages from clients', () => s.malformed);
  counter(
    'onionturn_fd_exhausted_total',
    'Relay sockets not opened for want of file descriptors (raise the limit: ulimit -n, LimitNOFILE, docker ulimits)',
    () => s.fdExhausted,
  );
  counter(
    'onionturn_mobility_handoffs_total',
    'TURN mobility take-overs whose new connection reached another worker and was handed to the one holding the allocation (--workers)',
    () => s.handedOff,
  );
  counter('onionturn_mobility_adopted_total', 'Connections adopted from another worker for a TURN mobility take-over (--workers)', () => s.adopted);
  counter('onionturn_internal_errors_total', 'Exceptions caught in socket handlers (a connection closed or a datagram dropped)', () => s.internalErrors);
  const directional = (name: string, help: string, toPeer: () => number, toClient: () => number): void =>
    totalsCounter(registry, name, help, ['direction'], () => [
      [['to_peer'], toPeer()],
      [['to_client'], toClient()],
    ]);
  directional(
    'onionturn_relayed_bytes_total',
    'Relayed payload bytes',
    () => s.bytesToPeer,
    () => s.bytesToClient,
  );
  directional(
    'onionturn_relayed_packets_total',
    'Relayed datagrams',
    () => s.packetsToPeer,
    () => s.packetsToClient,
  );
  const labelled = (name: string, help: string, label: string, read: () => Iterable<[string, number]>): void =>
    totalsCounter(registry, name, help, [label], () => [...read()].map(([k, v]) => [[k], v] as const));
  labelled('onionturn_error_responses_total', 'Error responses by code', 'code', () => [...s.errors].map(([k, v]) => [String(k), v]));
  labelled('onionturn_quota_hits_total', 'Requests or datagrams refused by a quota', 'quota', () => s.quotaHits);
  labelled('onionturn_dropped_total', 'Datagrams dropped, by reason', 'reason', () => [
    ['filtered', s.droppedFiltered],
    ['no-permission', s.droppedNoPermission],
    ['bandwidth', s.droppedBandwidth],
    ['consent', s.droppedConsent],
    ['destination-budget', s.droppedDestination],
    ['oversize', s.droppedOversize],
    ['detached', s.droppedDetached],
    ['backlog-full', s.droppedBacklog],
    ['stale', s.queueDrops.stale],
    ['stale-arrival', s.droppedStaleArrival],
  ]);
  // The stale ones by size: video-sized first is the intent, so what audio still loses shows here.
  labelled(
    'onionturn_stale_dropped_total',
    'Datagrams dropped for waiting past --max-queue-delay-ms, by size (large: over 400 bytes, video-sized)',
    'size',
    () => [
      ['large', s.queueDrops.staleLarge],
      ['small', s.queueDrops.staleSmall],
    ],
  );
  const df = s.delayFeedback;
  counter('onionturn_delay_feedback_negotiated_total', 'Client connections that negotiated the shim-server delay extension', () => df.negotiated);
  labelled('onionturn_delay_feedback_reports_total', 'Delay extension reports, by direction', 'direction', () => [
    ['sent', df.reportsSent],
    ['received', df.reportsReceived],
  ]);
  counter('onionturn_delay_feedback_held_total', 'Times the in-flight cap began holding relayed data back in a client writer', () => df.held);
  counter(
    'onionturn_delay_feedback_stalls_total',
    'Times nothing was acknowledged for 2 s while the cap held data (reports stopped, or stopped acknowledging)',
    () => df.stalls,
  );
  return registry;
}

/** What /metrics shows: a Registry, or a cluster's aggregator (the sum over its workers). */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** Serves GET /metrics on host:port; errors once listening (EMFILE on accept) go to onError. */
export async function serveMetrics(registry: MetricsSource, host: string, port: number, onError: (err: Error) => void = () => undefined): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await listenOn(server, { port, host }, onError);
  return server;
}
