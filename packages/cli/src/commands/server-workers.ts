// `onionturn server --workers N`: Node's cluster. The primary forks N workers, each a full server
// for the TCP/TLS connections the primary hands it, with its own slice of the relay port range
// (so workers never collide and each keeps its own quarantine). One worker owns the UDP listeners
// (a client 5-tuple must reach the worker that holds its allocation, and Node 20 cannot steer a
// shared UDP handle by source). The primary keeps what is per host: the metrics endpoint (summed
// over workers by prom-client's aggregator), the credential endpoint, signals, restarts of a worker
// that dies (its clients' connections close with it), and the live relay addresses, which it
// passes between workers so two users on different workers still reach each other.
// TURN mobility: the primary makes the ticket and nonce keys all workers share; a worker that gets
// a Refresh with another worker's ticket on a plain TCP connection sends the connection (its
// handle and the bytes read) through the primary to that worker, which serves it from then on.
import type { ChildProcess } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import { randomBytes, randomInt } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import { AggregatorRegistry } from 'prom-client';
import {
  closeHandle,
  SharedRelays,
  SharedReservations,
  serveMetrics,
  type Logger,
  type RelayBatch,
  type ReservationMessage,
  type ClusterShare,
  type HandOffSink,
  type TurnServer,
  type TurnServerConfig,
} from '@onionturn/server';
import type { TransportAddress } from '@onionturn/protocol';
import { errorCode } from '@onionturn/io';

const INDEX_ENV = 'OT_CLUSTER_WORKER_INDEX';
const COUNT_ENV = 'OT_CLUSTER_WORKERS';
const RESTART_DELAY_MS = 500;
const STOP_GRACE_MS = 10_000;
/** Connections on their way from one process to another (per channel): beyond, a take-over gets 508. */
const MAX_HANDOFFS_IN_FLIGHT = 32;
/** A connection that took longer than this to reach its worker is closed there (the ticket still works). */
const HANDOFF_MAX_AGE_MS = 1000;

interface RelayMessage extends RelayBatch {
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

/** A worker asks for what all workers share (sent once it listens for the answer). */
interface ShareRequest {
  readonly type: 'onionturn-share?';
}
interface ShareMessage {
  readonly type: 'onionturn-share';
  readonly mobilityKey: string;
  readonly nonceSecret: string;
  readonly nonceOrigin: number;
  readonly incarnation: number;
}
/**
 * A connection (its raw TCP handle rides along) for worker `to`, from worker `from`; `back` when
 * the primary returns it to `from` undelivered ('gone': no such worker now; 'busy').
 */
interface HandOffIpc {
  readonly type: 'onionturn-handoff';
  readonly to: number;
  readonly from: number;
  readonly remote: TransportAddress;
  /** The stream from the Refresh on, base64. */
  readonly bytes: string;
  /** Date.now() at the origin. */
  readonly sentAt: number;
  readonly back?: 'busy' | 'gone';
}

function typed(m: unknown, type: string): boolean {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;
}

function isHandOff(m: unknown): m is HandOffIpc {
  if (!typed(m, 'onionturn-handoff')) return false;
  const h = m as HandOffIpc;
  return Number.isInteger(h.to) && Number.isInteger(h.from) && typeof h.bytes === 'string' && typeof h.remote === 'object' && h.remote !== null;
}

/** Sends a raw handle; this process's copy is closed once it went (or could not). */
function sendHandle(to: NodeJS.Process | ChildProcess, message: HandOffIpc, handle: object, done: () => void): void {
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    closeHandle(handle);
    done();
  };
  try {
    if (to.send === undefined) finish();
    else to.send(message, handle as never, undefined, finish);
  } catch {
    finish();
  }
}

/** The worker's server, once it runs: connections handed here are adopted by it. */
let adopter: TurnServer | undefined;

function isReservationMessage(m: unknown): m is ReservationIpc {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'onionturn-reservation';
}

function isRelayMessage(m: unknown): m is RelayMessage {
  return typed(m, 'onionturn-relay') && Array.isArray((m as { ops?: unknown }).ops);
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

/** In a worker: asks the primary for the shared keys and this worker's incarnation. */
function askShare(): Promise<ClusterShare> {
  return new Promise((resolve) => {
    const onMessage = (m: unknown): void => {
      if (!typed(m, 'onionturn-share')) return;
      const share = m as ShareMessage;
      process.off('message', onMessage);
      resolve({
        mobilityKey: Buffer.from(share.mobilityKey, 'base64'),
        nonceSecret: Buffer.from(share.nonceSecret, 'base64'),
        nonceOrigin: share.nonceOrigin,
        incarnation: share.incarnation,
      });
    };
    process.on('message', onMessage);
    process.send?.({ type: 'onionturn-share?' } satisfies ShareRequest);
  });
}

/** In a worker: sends connections to other workers through the primary, adopts those sent here. */
function workerHandOffs(index: number): HandOffSink {
  let inFlight = 0;
  process.on('message', (m: unknown, handle: unknown) => {
    if (!isHandOff(m) || typeof handle !== 'object' || handle === null) return;
    const bytes = Buffer.from(m.bytes, 'base64');
    if (adopter === undefined) closeHandle(handle);
    else if (m.back !== undefined) adopter.adopt(handle, m.remote, bytes, m.back);
    // Too late: the client may have given up; it closes, and the ticket still works on a new one.
    else if (Date.now() - m.sentAt > HANDOFF_MAX_AGE_MS) closeHandle(handle);
    else adopter.adopt(handle, m.remote, bytes);
  });
  return {
    ready: () => (inFlight < MAX_HANDOFFS_IN_FLIGHT && process.connected ? 'handed' : 'busy'),
    send(h): void {
      inFlight++;
      const message: HandOffIpc = {
        type: 'onionturn-handoff',
        to: h.worker,
        from: index,
        remote: h.remote,
        bytes: h.bytes.toString('base64'),
        sentAt: Date.now(),
      };
      sendHandle(process, message, h.handle, () => inFlight--);
    },
  };
}

export async function workerConfig(config: TurnServerConfig, index: number, count: number): Promise<TurnServerConfig> {
  const { min, max } = workerPorts(config, index, count);
  const limits = config.limits ?? {};
  // Quotas that are global in one process are split evenly: no IPC per allocation or per packet.
  const share = (n: number | undefined): number | undefined => (n === undefined || n === 0 ? n : Math.max(1, Math.ceil(n / count)));
  const allocations = share(limits.allocations);
  const bandwidthTotal = share(limits.bandwidthTotal);
  // Per-destination budgets too: the workers together stay within what the operator set.
  const bandwidthPerDestination = share(limits.bandwidthPerDestination);
  const packetsPerDestination = share(limits.packetsPerDestination);
  const relays = new SharedRelays((batch) => process.send?.({ type: 'onionturn-relay', ...batch } satisfies RelayMessage));
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
    cluster: await askShare(),
    handOffs: workerHandOffs(index),
  };
}

/** In a worker, once its server runs: metrics for the primary's aggregator, and "ready". */
export function workerStarted(server: TurnServer): void {
  adopter = server;
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
  // Scheduling stays Node's default on Linux, round robin: the primary accepts each connection and
  // hands it to a worker over IPC (3 messages; about 165 µs of CPU per connection, primary and
  // worker together, scripts/bench-alloc-split.mjs). SCHED_NONE (the workers accept themselves)
  // saves that but spreads connections badly: 200 connections over 2 workers
  // came out 160/40 one at a time and 26/174 in a burst (round robin: 100/100, at worst 83/117),
  // and a TURN connection is held for a whole call. NODE_CLUSTER_SCHED_POLICY=none still chooses it.
  cluster.setupPrimary({ exec: process.argv[1] as string, args: process.argv.slice(2) });
  const byIndex = new Map<number, Worker>();
  /** Relay addresses each worker announced, to pass to newcomers and to withdraw when it dies. */
  const relaysOf = new Map<Worker, Set<string>>();
  let stopping = false;
  // What all workers share, for as long as the primary runs; each life of a worker gets its own
  // incarnation (never given twice: it keeps ticket nonces unique under the shared key).
  const share = { mobilityKey: randomBytes(32).toString('base64'), nonceSecret: randomBytes(32).toString('base64'), nonceOrigin: -randomInt(0, 2 ** 40) };
  let incarnations = 0;
  /** Workers that listen (a hand-off goes only to one whose server runs). */
  const serving = new Set<Worker>();
  const inFlightTo = new Map<Worker, number>();
  /** Forwards a connection to `target` unless too many are on their way there; false when not sent. */
  const forward = (target: Worker, message: HandOffIpc, handle: object): boolean => {
    const n = inFlightTo.get(target) ?? 0;
    if (n >= MAX_HANDOFFS_IN_FLIGHT || !target.isConnected()) return false;
    inFlightTo.set(target, n + 1);
    sendHandle(target.process, message, handle, () => {
      const left = inFlightTo.get(target);
      if (left !== undefined) inFlightTo.set(target, left - 1); // none once the worker exited
    });
    return true;
  };
  const handOff = (from: Worker, m: HandOffIpc, handle: object): void => {
    const target = byIndex.get(m.to);
    const live = target !== undefined && serving.has(target);
    if (m.back === undefined && live && Date.now() - m.sentAt <= HANDOFF_MAX_AGE_MS && forward(target, m, handle)) return;
    // Back to the worker that got it, which answers the Refresh (437 gone, 508 busy); else closed.
    if (m.back !== undefined || !forward(from, { ...m, back: live ? 'busy' : 'gone' }, handle)) closeHandle(handle);
  };
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
  const broadcast = (from: Worker | undefined, ops: readonly string[]): void => {
    if (ops.length === 0) return;
    for (const w of byIndex.values()) if (w !== from && w.isConnected()) send(w, { type: 'onionturn-relay', ops } satisfies RelayMessage);
  };
  const fork = (index: number, restart: boolean): void => {
    const w = cluster.fork({ [INDEX_ENV]: String(index), [COUNT_ENV]: String(count) });
    const incarnation = ++incarnations;
    byIndex.set(index, w);
    relaysOf.set(w, new Set());
    w.on('online', () => {
      // What the others hold now: a newcomer can reach their relays from its first request.
      const ops: string[] = [];
      for (const [other, keys] of relaysOf) if (other !== w) for (const key of keys) ops.push(`+${key}`);
      if (ops.length > 0) send(w, { type: 'onionturn-relay', ops } satisfies RelayMessage);
    });
    w.on('message', (m: unknown, handle: unknown) => {
      if (isHandOff(m)) {
        if (typeof handle === 'object' && handle !== null) handOff(w, m, handle);
      } else if (typed(m, 'onionturn-share?')) {
        if (w.isConnected()) w.send({ type: 'onionturn-share', ...share, incarnation } satisfies ShareMessage, undefined, undefined, () => undefined);
      } else if (isRelayMessage(m)) {
        const keys = relaysOf.get(w);
        const ops = m.ops.filter((op): op is string => typeof op === 'string');
        for (const op of ops) {
          if (op.startsWith('+')) keys?.add(op.slice(1));
          else if (op.startsWith('-')) keys?.delete(op.slice(1));
        }
        broadcast(w, ops);
        // Sent after the broadcast: each other worker has the add in its channel before the
        // allocation is answered, so before any client can name the address.
        if (m.ack !== undefined && w.isConnected()) send(w, { type: 'onionturn-relay-ack', ack: m.ack } satisfies AckMessage);
      } else if (isReservationMessage(m)) {
        reservation(w, index, m);
      } else if (isReadyMessage(m)) {
        serving.add(w);
        for (const l of m.listeners) listeners.add(l);
        if (restart) logger.info('worker-restarted', { worker: index, pid: w.process.pid });
        else if (++ready === count) allReady();
      }
    });
    // A worker that is going away (SIGTERM to all, or killed) can close its IPC channel between
    // isConnected() and a send: that error is the worker's end, never the primary's.
    w.on('error', (err) => logger.debug('worker-ipc-error', { worker: index, error: errorCode(err) }));
    w.on('exit', (code, signal) => {
      const gone = [...(relaysOf.get(w) ?? [])].map((key) => `-${key}`);
      if (!stopping) broadcast(w, gone);
      relaysOf.delete(w);
      serving.delete(w);
      inFlightTo.delete(w);
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
