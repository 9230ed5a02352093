// The shim's /metrics (prom-client, served on the status page's port): counters read from the
// shim's plain stats at scrape time, like the server's. Labels name flow kinds and reasons,
// never a flow, a user or an address.
import { Gauge, Registry } from 'prom-client';
import { totalsCounter, type Totals } from '@onionturn/server';
import { dropsOf, type Shim, type TorWatch } from '@onionturn/client';

export function createShimMetrics(shim: () => Shim | undefined, tor: TorWatch): Registry {
  const registry = new Registry();
  const stats = (): Shim['stats'] | undefined => shim()?.stats;
  const counter = (name: string, help: string, labelNames: string[], read: () => Totals): void => totalsCounter(registry, name, help, labelNames, read);
  const kinds = (): [string, { open: number; opened: number; bytesToServer: number; bytesToApp: number }][] => {
    const s = stats();
    return s ? [...s.kinds.entries()] : [];
  };
  new Gauge({
    name: 'onionturn_client_flows',
    help: 'Flows open now, by kind',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      for (const [kind, k] of kinds()) this.set({ kind }, k.open);
    },
  });
  counter('onionturn_client_flows_opened_total', 'Flows opened, by kind', ['kind'], () => kinds().map(([kind, k]) => [[kind], k.opened]));
  counter('onionturn_client_bytes_total', 'Bytes carried, by flow kind and direction', ['kind', 'direction'], () =>
    kinds().flatMap(([kind, k]) => [
      [[kind, 'to_server'], k.bytesToServer],
      [[kind, 'to_app'], k.bytesToApp],
    ]),
  );
  counter('onionturn_client_dropped_total', 'Datagrams, connections or flows dropped, by reason', ['reason'], () => {
    const s = stats();
    return s ? Object.entries(dropsOf(s)).map(([r, n]) => [[r], n]) : [];
  });
  counter(
    'onionturn_client_stale_dropped_total',
    'Datagrams dropped towards Tor for waiting past --max-queue-delay-ms, by size (large: over 400 bytes, video-sized)',
    ['size'],
    () => {
      const d = stats()?.queueDrops;
      return d
        ? [
            [['large'], d.staleLarge],
            [['small'], d.staleSmall],
          ]
        : [];
    },
  );
  counter(
    'onionturn_client_delay_feedback_total',
    'The delay extension with the server: streams that negotiated it, reports sent and received, holds of the in-flight cap, report stalls, stalled streams given up for a new circuit',
    ['event'],
    () => {
      const s = stats();
      if (!s) return [];
      const d = s.delayFeedback;
      return [
        [['negotiated'], d.negotiated],
        [['report-sent'], d.reportsSent],
        [['report-received'], d.reportsReceived],
        [['held'], d.held],
        [['stall'], d.stalls],
        [['stall-moved'], s.stalledStreamsMoved],
      ];
    },
  );
  counter('onionturn_client_dial_failures_total', 'Tor streams to the server that could not be opened, by error code', ['code'], () => {
    const s = stats();
    return s ? Object.entries(s.dialFailures).map(([c, n]) => [[c], n]) : [];
  });
  counter('onionturn_client_auth_refused_total', 'Credentials refused: by the server (upstream 401) or by the shim (local mode)', ['by'], () => {
    const s = stats();
    return s
      ? [
          [['server'], s.turnAuthRefused],
          [['shim'], s.authFailures],
        ]
      : [];
  });
  counter(
    'onionturn_client_streams_moved_total',
    'Tor streams lost mid-flow whose allocation the shim tried to take over on a new circuit (TURN mobility)',
    [],
    () => {
      const s = stats();
      return s ? [[[], s.streamsMoved]] : [];
    },
  );
  counter('onionturn_client_ready_streams_used_total', 'New flows that started on a Tor stream held ready ahead of need (--ready-stream)', [], () => {
    const s = stats();
    return s ? [[[], s.readyStreamsUsed]] : [];
  });
  counter(
    'onionturn_client_ready_challenges_used_total',
    "Apps' first Allocates answered at once with the server's 401, asked for ahead on a held stream (a round trip over Tor saved)",
    [],
    () => {
      const s = stats();
      return s ? [[[], s.readyChallengesUsed]] : [];
    },
  );
  counter('onionturn_client_peer_refused_total', "CreatePermission/ChannelBind refused by the server's peer policy (403)", [], () => {
    const s = stats();
    return s ? [[[], s.peerRefused]] : [];
  });
  new Gauge({
    name: 'onionturn_client_dial_queue',
    help: 'New flows waiting for their turn to open a Tor stream',
    registers: [registry],
    collect() {
      this.set(shim()?.dialQueue ?? 0);
    },
  });
  new Gauge({
    name: 'onionturn_client_tor_up',
    help: '1 when the SOCKS port answered as Tor at the last check',
    registers: [registry],
    async collect() {
      await tor.refresh();
      this.set(tor.view().verdict === 'tor' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'onionturn_client_tor_bootstrap_percent',
    help: "Our own tor's bootstrap progress (100 for a tor found running)",
    registers: [registry],
    collect() {
      this.set(tor.managed ? (tor.bootstrapPercent ?? 0) : 100);
    },
  });
  counter('onionturn_client_tor_restarts_total', 'Times our own tor died under the shim and was started again', [], () => [[[], tor.restarts]]);
  return registry;
}
