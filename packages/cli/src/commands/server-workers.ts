// `onionturn server --workers N`: Node's cluster. The primary forks N workers, each a full server
// for the TCP/TLS connections the primary hands it, with its own slice of the relay port range
// (so workers never collide and each keeps its own quarantine). One worker owns the UDP listeners
// (a client 5-tuple must reach the worker that holds its allocation, and Node 20 cannot steer a
// shared UDP handle by source). The primary keeps what is per host: the metrics endpoint (summed
// over workers by prom-client's aggregator), the credential endpoint, signals, restarts of a worker
// that dies (its clients' connections close with it), and the live relay addresses, which it
// passes between workers so two users on different workers still reach each other.
import cluster, { type Worker } from 'node:cluster';
import type { Server as HttpServer } from 'node:http';
import { AggregatorRegistry } from 'prom-client';
import {
  SharedRelays,
  SharedReservations,
  serveMetrics,
  type Logger,
  type RelayChange,
  type ReservationMessage,
  type TurnServer,
  type TurnServerConfig,
} from '@onionturn/server';
import { errorCode } from '@onionturn/io';

const INDEX_ENV = 'OT_CLUSTER_WORKER_INDEX';
const COUNT_ENV = 'OT_CLUSTER_WORKERS';
const RESTART_DELAY_MS = 500;
const STOP_GRACE_MS = 10_000;

interface RelayMessage extends RelayChange {
  readonly type: 'onionturn-relay';
}
interface AckMessage {
  readonly type: 'onionturn-relay-ack';
  readonly ack: number;
}
interface ReadyMessage {
  readonly type: 'onionturn-ready';
  readonly listeners: readonly string[];
}

type ReservationIpc = ReservationMessage & { readonly type: 'onionturn-reservation' };

function isReservationMessage(m: unknown): m is ReservationIpc {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'onionturn-reservation';
}

function isRelayMessage(m: unknown): m is RelayMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'onionturn-relay';
}

function isAckMessage(m: unknown): m is AckMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'onionturn-relay-ack';
}

function isReadyMessage(m: unknown): m is ReadyMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'onionturn-ready';
}

/** This process's place in a cluster, when it is a worker. */
export function workerIdentity(): { index: number; count: number } | undefined {
  if (!cluster.isWorker) return undefined;
  const index = Number(process.env[INDEX_ENV]);
  const count = Number(process.env[COUNT_ENV]);
  return Number.isInteger(index) && Number.isInteger(count) && count > 1 ? { index, count } : undefined;
}

/** Worker `index` of `count`: its relay ports, listeners, share of the global quotas, shared relays. */
/** Worker `index`'s slice of the relay port range. */
function workerPorts(config: TurnServerConfig, index: number, count: number): { min: number; max: number } {
  const range = config.relayPorts ?? { min: 49152, max: 65535 };
  const size = Math.floor((range.max - range.min + 1) / count);
  const min = range.min + index * size;
  return { min, max: index === count - 1 ? range.max : min + size - 1 };
}

export function workerConfig(config: TurnServerConfig, index: number, count: number): TurnServerConfig {
  const { min, max } = workerPorts(config, index, count);
  const limits = config.limits ?? {};
  // Quotas that are global in one process are split evenly: no IPC per allocation or per packet.
  const share = (n: number | undefined): number | undefined => (n === undefined || n === 0 ? n : Math.max(1, Math.ceil(n / count)));
  const allocations = share(limits.allocations);
  const bandwidthTotal = share(limits.bandwidthTotal);
  // Per-destination budgets too: the workers together stay within what the operator set.
  const bandwidthPerDestination = share(limits.bandwidthPerDestination);
  const packetsPerDestination = share(limits.packetsPerDestination);
  const relays = new SharedRelays((change) => process.send?.({ type: 'onionturn-relay', ...change } satisfies RelayMessage));
  const reservations = new SharedReservations((m) => process.send?.({ type: 'onionturn-reservation', ...m } satisfies ReservationIpc));
  process.on('message', (m: unknown) => {
    if (isRelayMessage(m)) relays.apply(m);
    else if (isAckMessage(m)) relays.acked(m.ack);
    else if (isReservationMessage(m)) reservations.apply(m);
  });
  const { metrics: _metrics, ...rest } = config;
  return {
    ...rest,
    listen: index === 0 ? config.listen : config.listen.filter((l) => l.protocol !== 'udp'),
    relayPorts: { min, max },
    limits: {
      ...limits,
      ...(allocations !== undefined ? { allocations } : {}),
      ...(bandwidthTotal !== undefined ? { bandwidthTotal } : {}),
      ...(bandwidthPerDestination !== undefined ? { bandwidthPerDestination } : {}),
      ...(packetsPerDestination !== undefined ? { packetsPerDestination } : {}),
    },
    relays,
    reservationExchange: reservations,
    worker: index,
  };
}

/** In a worker, once its server runs: metrics for the primary's aggregator, and "ready". */
export function workerStarted(server: TurnServer): void {
  new AggregatorRegistry(); // installs the worker's answer to the primary's metrics requests
  AggregatorRegistry.setRegistries([server.metricsRegistry()]);
  const listeners = server.addresses.map((b) => `${b.protocol}://${b.address.includes(':') ? `[${b.address}]` : b.address}:${b.port}`);
  process.send?.({ type: 'onionturn-ready', listeners } satisfies ReadyMessage);
}

export interface Primary {
  /** SIGHUP: passed to every worker. */
  reload(): void;
  /** SIGTERM: every worker stops (allocations closed), then the primary's endpoints. */
  stop(): Promise<void>;
}

/** Sends to a worker; a channel that closed meanwhile loses the message, nothing more. */
function send(w: Worker, message: RelayMessage | AckMessage | ReservationIpc): void {
  w.send(message, undefined, undefined, () => undefined);
}

/** Forks the workers and resolves once every one of them listens. */
export async function startPrimary(config: TurnServerConfig, count: number, logger: Logger): Promise<Primary> {
  cluster.setupPrimary({ exec: process.argv[1] as string, args: process.argv.slice(2) });
  const byIndex = new Map<number, Worker>();
  /** Relay addresses each worker announced, to pass to newcomers and to withdraw when it dies. */
  const relaysOf = new Map<Worker, Set<string>>();
  let stopping = false;
  const listeners = new Set<string>();
  let ready = 0;
  let allReady: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (allReady = resolve));

  /** Which worker issued each live RESERVATION-TOKEN (see shared-reservations.ts). */
  const tokenOwner = new Map<string, Worker>();
  const workerOfPort = (port: number): Worker | undefined => {
    for (let i = 0; i < count; i++) {
      const r = workerPorts(config, i, count);
      if (port >= r.min && port <= r.max) return byIndex.get(i);
    }
    return undefined;
  };
  const reservation = (w: Worker, index: number, m: ReservationIpc): void => {
    const to = (target: Worker | undefined, msg: ReservationMessage): void => {
      if (target?.isConnected()) send(target, { type: 'onionturn-reservation', ...msg } satisfies ReservationIpc);
    };
    if (m.op === 'issued') tokenOwner.set(m.token, w);
    else if (m.op === 'withdrawn') {
      if (tokenOwner.get(m.token) === w) tokenOwner.delete(m.token);
    } else if (m.op === 'claim') {
      const owner = tokenOwner.get(m.token);
      if (owner === undefined || owner === w) to(w, { op: 'lent', id: m.id });
      else to(owner, { op: 'claim', token: m.token, id: m.id, from: index });
    } else if (m.op === 'lent') {
      if (m.to !== undefined) to(byIndex.get(m.to), { op: 'lent', id: m.id, ...(m.lent ? { lent: m.lent } : {}) });
    } else if (m.op === 'home') to(workerOfPort(m.port), { op: 'home', port: m.port });
  };
  const broadcast = (from: Worker | undefined, change: RelayChange): void => {
    for (const w of byIndex.values()) if (w !== from && w.isConnected()) send(w, { type: 'onionturn-relay', ...change } satisfies RelayMessage);
  };
  const fork = (index: number, restart: boolean): void => {
    const w = cluster.fork({ [INDEX_ENV]: String(index), [COUNT_ENV]: String(count) });
    byIndex.set(index, w);
    relaysOf.set(w, new Set());
    w.on('online', () => {
      // What the others hold now: a newcomer can reach their relays from its first request.
      for (const [other, keys] of relaysOf)
        if (other !== w) for (const key of keys) send(w, { type: 'onionturn-relay', op: 'add', key } satisfies RelayMessage);
    });
    w.on('message', (m: unknown) => {
      if (isRelayMessage(m)) {
        const keys = relaysOf.get(w);
        if (m.op === 'add') keys?.add(m.key);
        else keys?.delete(m.key);
        broadcast(w, { op: m.op, key: m.key });
        // Sent after the broadcast: each other worker has the add in its channel before the
        // allocation is answered, so before any client can name the address.
        if (m.ack !== undefined && w.isConnected()) send(w, { type: 'onionturn-relay-ack', ack: m.ack } satisfies AckMessage);
      } else if (isReservationMessage(m)) {
        reservation(w, index, m);
      } else if (isReadyMessage(m)) {
        for (const l of m.listeners) listeners.add(l);
        if (restart) logger.info('worker-restarted', { worker: index, pid: w.process.pid });
        else if (++ready === count) allReady();
      }
    });
    // A worker that is going away (SIGTERM to all, or killed) can close its IPC channel between
    // isConnected() and a send: that error is the worker's end, never the primary's.
    w.on('error', (err) => logger.debug('worker-ipc-error', { worker: index, error: errorCode(err) }));
    w.on('exit', (code, signal) => {
      if (!stopping) for (const key of relaysOf.get(w) ?? []) broadcast(w, { op: 'remove', key });
      relaysOf.delete(w);
      for (const [token, owner] of tokenOwner) if (owner === w) tokenOwner.delete(token);
      if (byIndex.get(index) === w) byIndex.delete(index);
      if (stopping) return;
      logger.warn('worker-exited', { worker: index, code, signal });
      setTimeout(() => {
        if (!stopping) fork(index, true);
      }, RESTART_DELAY_MS).unref();
    });
  };
  for (let i = 0; i < count; i++) fork(i, false);
  await started;

  let metrics: HttpServer | undefined;
  if (config.metrics) {
    const aggregator = new AggregatorRegistry();
    metrics = await serveMetrics(
      { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType },
      config.metrics.host,
      config.metrics.port,
      (e) => logger.error('metrics-listener-error', { error: e.message }),
    );
  }
  logger.info('server-started', { listeners: [...listeners].sort(), workers: count });
  return {
    reload(): void {
      for (const w of byIndex.values()) w.process.kill('SIGHUP');
    },
    async stop(): Promise<void> {
      stopping = true;
      await Promise.all(
        [...byIndex.values()].map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.isDead()) return resolve();
              const timer = setTimeout(() => w.process.kill('SIGKILL'), STOP_GRACE_MS);
              w.once('exit', () => {
                clearTimeout(timer);
                resolve();
              });
              w.process.kill('SIGTERM');
            }),
        ),
      );
      if (metrics) await new Promise<void>((resolve) => (metrics as HttpServer).close(() => resolve()));
    },
  };
}
