// Prometheus metrics of `onionturn udp-gateway` (--metrics): read from the gateway's plain
// counters at scrape time, as the server's are. Nothing names a client.
import { Gauge, Registry } from 'prom-client';
import { totalsCounter } from './totals-counter.js';
import type { UdpGateway } from './udp-gateway.js';

export function createGatewayMetricsRegistry(gateway: UdpGateway): Registry {
  const registry = new Registry();
  const s = gateway.stats;
  new Gauge({
    name: 'onionturn_gateway_streams',
    help: 'Streams open now',
    registers: [registry],
    collect() {
      this.set(gateway.streams);
    },
  });
  const labelled = (name: string, help: string, label: string, read: () => [string, number][]): void =>
    totalsCounter(registry, name, help, [label], () => read().map(([value, n]) => [[value], n] as const));
  labelled('onionturn_gateway_streams_total', 'Streams accepted, or refused over --max-streams', 'result', () => [
    ['accepted', s.streamsAccepted],
    ['refused', s.streamsRefused],
  ]);
  labelled('onionturn_gateway_streams_closed_total', 'Streams the gateway closed, by reason', 'reason', () => [
    ['framing', s.closedFraming],
    ['idle', s.closedIdle],
  ]);
  labelled('onionturn_gateway_datagrams_total', 'Datagrams passed, by direction', 'direction', () => [
    ['to_target', s.datagramsToTarget],
    ['to_client', s.datagramsFromTarget],
  ]);
  labelled('onionturn_gateway_bytes_total', 'Datagram payload bytes passed, by direction', 'direction', () => [
    ['to_target', s.bytesToTarget],
    ['to_client', s.bytesFromTarget],
  ]);
  labelled('onionturn_gateway_dropped_total', 'Datagrams dropped, by reason', 'reason', () => [
    ['oversized', s.droppedOversized],
    ['queue-full', s.droppedQueueFull],
  ]);
  return registry;
}
