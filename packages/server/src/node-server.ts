// The Node shell around TurnCore: TCP, TLS and UDP listeners, relay sockets, the timer, metrics.
// Sockets only; every TURN rule lives in the core.
import { createSocket, type Socket as UdpSocket, type RemoteInfo } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { networkInterfaces } from 'node:os';
import { createServer as createTlsServer } from 'node:tls';
import {
  DEFAULT_MAX_QUEUE_DELAY_MS,
  DelayFeedbackSession,
  REPORT_INTERVAL_MS,
  TcpBatchWriter,
  BURST_GAP_MS,
  errorCode,
  listenOn,
  type DelayFeedbackSessionOptions,
  type DelayReport,
  type TimeBound,
} from '@onionturn/io';
import {
  FrameKind,
  StreamFramer,
  channelDataPadding,
  classifyFrame,
  encodeDelayFeedbackIndication,
  writeChannelDataHeader,
  type FramerOptions,
  type IpFamily,
  type TransportAddress,
} from '@onionturn/protocol';
import { Client, type ClientLink, type ClientTransport, type HandOffResult, type Relay, type RelaySocket } from './allocation.js';
import { detachHandle, socketOf } from './handoff-socket.js';
import type { CredentialLookup } from './auth.js';
import type { ChannelRange, Filtering, RelayAddress, RelayBinder } from './core-options.js';
import type { Lifetimes, Limits } from './limits.js';
import { createLogger, type Logger } from './logger.js';
import type { Registry } from 'prom-client';
import { createMetricsRegistry, serveMetrics } from './metrics.js';
import { PeerPolicy, type PolicyRule } from './peer-policy.js';
import { PortPool } from './port-pool.js';
import type { LiveRelays } from './relay-registry.js';
import { monotonicNow } from './monotonic.js';
import { OwnAddressWatch } from './own-addresses.js';
import { readProxyHeader } from './proxy-listener.js';
import { DEFAULT_UDP_ADMISSION, DEFAULT_UDP_CLIENT_LIMITS, UdpClients, type UdpAdmissionRate } from './udp-clients.js';
import { TurnCore } from './turn-core.js';
import type { CoreStats } from './stats.js';
import type { ReservationExchange } from './reservations.js';

export interface ListenSpec {
  readonly protocol: ClientTransport;
  readonly host: string;
  readonly port: number;
  /**
   * tcp:// only: each connection starts with a PROXY protocol v1 line (tor's
   * HiddenServiceExportCircuitID haproxy) naming the client; behind an onion service that is its
   * circuit, the only thing that tells clients apart (they all come from 127.0.0.1).
   */
  readonly proxyHeader?: boolean;
}

export interface TurnServerConfig {
  readonly listen: readonly ListenSpec[];
  readonly realm: string;
  readonly lookup: CredentialLookup;
  /** PEM certificate and key files, for tls:// listeners. */
  readonly cert?: string;
  readonly key?: string;
  /** --peer-policy: after the built-in deny list. */
  readonly peerPolicy?: readonly PolicyRule[];
  /** --allow-peer: ranges reopened before the built-in deny list (accept rules). */
  readonly allowedPeers?: readonly PolicyRule[];
  readonly allowLoopbackPeers?: boolean;
  readonly filtering?: Filtering;
  /** Addresses relay sockets bind to (one per family); default: the first listener address of that family. */
  readonly relayIps?: readonly string[];
  /** Addresses announced in XOR-RELAYED-ADDRESS (NAT), one per family; default: the relay address. */
  readonly externalIps?: readonly string[];
  readonly relayPorts?: { readonly min: number; readonly max: number };
  readonly portQuarantineSec?: number;
  readonly lifetimes?: Partial<Lifetimes>;
  readonly limits?: Partial<Limits>;
  /** Default true; false lets an expired REST credential refresh its allocation forever. */
  readonly strictExpiry?: boolean;
  /** RFC 8016 mobility tickets (default true; see CoreOptions.mobility). */
  readonly mobility?: boolean;
  readonly software?: string;
  readonly metrics?: { readonly host: string; readonly port: number };
  readonly logger?: Logger;
  readonly logSensitive?: boolean;
  readonly channelRange?: ChannelRange;
  /** Most TCP/TLS connections held at once. */
  readonly maxConnections?: number;
  /** Time from accept to a successful Allocate before a TCP/TLS connection is closed; default 30 s. */
  readonly allocateDeadlineMs?: number;
  /**
   * Relayed data waiting longer than this (ms) to be written to a TCP/TLS client is dropped (see
   * TimedQueue); 0: only the byte bound. Default DEFAULT_MAX_QUEUE_DELAY_MS.
   */
  readonly maxQueueDelayMs?: number;
  /**
   * The shim-server delay extension (issue 14; default true): a TCP/TLS client that offers
   * DELAY-FEEDBACK at Allocate gets it echoed, reports every ~50 ms and an in-flight cap on what
   * is written to it. Needs the time bound (maxQueueDelayMs > 0). false: never echoed
   * (--no-delay-feedback).
   */
  readonly delayFeedback?: boolean;
  /** A TLS handshake not done in this time closes the connection; default 10 s (Node's is 120 s). */
  readonly tlsHandshakeTimeoutMs?: number;
  /**
   * Bytes all TCP/TLS connections without an allocation may hold together (half-read frames and
   * unread answers); a connection that pushes past it is closed. Default 64 MiB.
   */
  readonly unallocatedBytes?: number;
  /**
   * Datagrams from UDP sources without an allocation (Binding, the 401 before Allocate) answered
   * per second, per source address and in total: spoofed sources cannot turn the listener into a
   * reflector. Default 100/s (bursts of 400: many clients behind one address) per address,
   * 2,000/s (bursts of 4,000) in total: at most ~11 kB/s of answers towards any one address.
   */
  /** Set in a worker of --workers: it logs 'worker-started' (the primary logs 'server-started'). */
  readonly worker?: number;
  /** Live relay addresses shared with other worker processes (--workers); default this process's own. */
  readonly relays?: LiveRelays;
  /** Reservations shared with other worker processes (--workers): RESERVATION-TOKEN on any worker. */
  readonly reservationExchange?: ReservationExchange;
  readonly udpUnauthenticatedRate?: UdpAdmissionRate;
  /** --workers: what the workers share (ticket and nonce keys) and this worker's life. */
  readonly cluster?: ClusterShare;
  /** --workers: sends a plain TCP connection to the worker holding the allocation its ticket names. */
  readonly handOffs?: HandOffSink;
}

/** Made by the primary once; each worker gets it with its incarnation (see mobility-tickets.ts). */
export interface ClusterShare {
  readonly mobilityKey: Buffer;
  readonly nonceSecret: Buffer;
  readonly nonceOrigin: number;
  readonly incarnation: number;
}

/** A connection on its way to another worker: its raw handle, who the client is, what was read. */
export interface HandOff {
  readonly worker: number;
  readonly handle: object;
  readonly remote: TransportAddress;
  readonly bytes: Buffer;
}

export interface HandOffSink {
  /** Whether a connection may leave for `worker` now ('busy': too many on their way). */
  ready(worker: number): 'handed' | 'busy';
  /** Sends it (closing this process's copy of the handle once sent). */
  send(handOff: HandOff): void;
}

/** Bytes queued on a client's TCP socket beyond which relayed data is dropped, as UDP would. */
const MAX_QUEUED = 1 << 20;
/** The same before the client holds an allocation: only a few answers of ~100 bytes are due. */
const MAX_QUEUED_UNALLOCATED = 16 * 1024;
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
const UNALLOCATED_BYTES = 64 << 20;
/**
 * A TCP or TLS connection (TLS once its handshake is done) without an allocation this long after
 * accept, or after its allocation ended, is closed, however it trickles bytes (which could pin a
 * framer's half-frame, up to 64 kB). It is the connection's only timer: none runs while an
 * allocation is held, so nothing is re-armed per packet.
 */
const ALLOCATE_DEADLINE_MS = 30_000;
const RELAY_RECV_BUFFER = 1 << 20;
/** A connection leaving for another worker waits this long at most for its last answers to be written. */
const HANDOFF_DRAIN_MS = 1000;
const FD_WARNING_INTERVAL_MS = 60_000;
/** Time between looks at the machine's interface addresses. */
const OWN_ADDRESS_CHECK_MS = 30_000;

/** The machine's interface addresses, or undefined when they cannot be read now (out of descriptors). */
function interfaceAddresses(): string[] | undefined {
  const all: string[] = [];
  try {
    for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) all.push(i.address);
  } catch {
    return undefined;
  }
  return all;
}

/**
 * dgram's default lookup goes through dns.lookup, costing a regex and a nextTick per datagram
 * even for an IP literal. Every address the relay sends to is a literal, so answer at once.
 */
function literalLookup(address: string, family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

export class TurnServer {
  readonly core: TurnCore;
  /** The start config, with lookup and policy rules as of the last reload. */
  #config: TurnServerConfig;
  /** The machine's interface addresses the peer policy denies, looked at again on a schedule. */
  readonly #own: OwnAddressWatch;
  readonly #log: Logger;
  #fdWarnedAt = -Infinity;
  readonly #tcpServers: TcpServer[] = [];
  readonly #udpListeners: UdpSocket[] = [];
  readonly #connections = new Set<Socket>();
  readonly #udpClients: UdpClients;
  #timer: NodeJS.Timeout | undefined;
  #metricsServer: HttpServer | undefined;
  readonly #bound: { protocol: ClientTransport; address: string; port: number }[] = [];
  #closing = false;
  #internalErrorLogged = false;
  readonly #framerOptions: FramerOptions;
  /** What connections without an allocation hold now, as last measured (see #accept). */
  #unallocatedHeld = 0;
  /** The time bound of every TCP/TLS client's writer (--max-queue-delay-ms); undefined: bytes only. */
  readonly #timeBound: TimeBound | undefined;
  /** Options of every negotiated connection's DelayFeedbackSession; undefined: the extension is off. */
  readonly #feedback: DelayFeedbackSessionOptions | undefined;

  private constructor(config: TurnServerConfig, core: TurnCore, log: Logger, own: OwnAddressWatch) {
    this.#config = config;
    this.#own = own;
    this.core = core;
    this.#log = log;
    this.#framerOptions = { rfc5766Channels: config.channelRange !== 'rfc8656' };
    const maxDelayMs = config.maxQueueDelayMs ?? DEFAULT_MAX_QUEUE_DELAY_MS;
    this.#timeBound = maxDelayMs > 0 ? { maxDelayMs, drops: core.stats.queueDrops, classify: classifyFrame } : undefined;
    this.#feedback =
      maxDelayMs > 0 && config.delayFeedback !== false
        ? {
            staleMs: maxDelayMs,
            encode: encodeDelayFeedbackIndication,
            clock: perfNow,
            counters: core.stats.delayFeedback,
            trace: (state) => log.debug('delay-state', state),
          }
        : undefined;
    this.#udpClients = new UdpClients({ ...DEFAULT_UDP_CLIENT_LIMITS, rate: config.udpUnauthenticatedRate ?? DEFAULT_UDP_ADMISSION }, monotonicNow());
  }

  /** Starts every listener; rejects (after cleaning up) when one cannot bind. */
  static async start(config: TurnServerConfig): Promise<TurnServer> {
    const log = config.logger ?? createLogger({ sensitive: config.logSensitive === true });
    const relays = pickRelays(config);
    const ports = config.relayPorts ?? { min: 49152, max: 65535 };
    const quarantineMs = (config.portQuarantineSec ?? 150) * 1000;
    const holder: { server?: TurnServer } = {};
    const interfaces = interfaceAddresses();
    if (interfaces === undefined) throw new Error('cannot read the interface addresses (out of file descriptors?)');
    const own = new OwnAddressWatch(interfaces, interfaceAddresses, OWN_ADDRESS_CHECK_MS, monotonicNow());
    const binder: RelayBinder = { bind: (relay, done) => (holder.server as TurnServer).#bindRelay(relay, done) };
    const core = new TurnCore({
      realm: config.realm,
      lookup: config.lookup,
      policy: TurnServer.#policy(config, relays, own.addresses),
      ports: new PortPool(ports.min, ports.max, quarantineMs),
      binder,
      ...(relays.relay4 ? { relay4: relays.relay4 } : {}),
      ...(relays.relay6 ? { relay6: relays.relay6 } : {}),
      ...(config.filtering ? { filtering: config.filtering } : {}),
      strictExpiry: config.strictExpiry !== false,
      mobility: config.mobility !== false,
      ...(config.channelRange ? { channelRange: config.channelRange } : {}),
      ...(config.software !== undefined ? { software: config.software } : {}),
      ...(config.lifetimes ? { lifetimes: config.lifetimes } : {}),
      ...(config.limits ? { limits: config.limits } : {}),
      ...(config.relays ? { relays: config.relays } : {}),
      ...(config.reservationExchange ? { reservationExchange: config.reservationExchange } : {}),
      ...(config.cluster
        ? {
            mobilityKey: config.cluster.mobilityKey,
            nonceSecret: config.cluster.nonceSecret,
            nonceOrigin: config.cluster.nonceOrigin,
            ticketIssuer: { worker: config.worker ?? 0, incarnation: config.cluster.incarnation },
          }
        : {}),
      events: { event: (name, fields, level) => (level === 'debug' ? log.debug(name, fields) : log.info(name, fields)) },
    });
    const server = new TurnServer(config, core, log, own);
    holder.server = server;
    if (config.allowLoopbackPeers) log.warn('--allow-loopback-peers is on: loopback peers are reachable; for tests only');
    for (const r of config.allowedPeers ?? [])
      log.warn('allow-peer', { range: r.text.replace(/^accept6?\s+/, ''), note: 'a range the built-in deny list closes is reachable' });
    try {
      for (const spec of config.listen) await server.#listen(spec);
      if (config.metrics) {
        server.#metricsServer = await serveMetrics(createMetricsRegistry(core), config.metrics.host, config.metrics.port, (err) =>
          log.error('metrics-listener-error', { error: errorCode(err) }),
        );
      }
    } catch (err) {
      await server.close();
      throw err;
    }
    server.#timer = setInterval(() => server.#tick(), 1000);
    // URL form, IPv6 in brackets ("tcp://[::1]:3478"), as --listen takes it.
    const listeners = server.#bound.map((b) => `${b.protocol}://${b.address.includes(':') ? `[${b.address}]` : b.address}:${b.port}`);
    if (config.worker === undefined) log.info('server-started', { listeners });
    else log.info('worker-started', { worker: config.worker, listeners, pid: process.pid });
    return server;
  }

  static #policy(config: TurnServerConfig, relays: { relay4?: RelayAddress; relay6?: RelayAddress }, interfaces: readonly string[]): PeerPolicy {
    const own = [...interfaces];
    for (const l of config.listen) own.push(l.host);
    for (const r of [relays.relay4, relays.relay6]) if (r) own.push(r.bind, r.external);
    return new PeerPolicy({
      rules: config.peerPolicy ?? [],
      allowed: config.allowedPeers ?? [],
      ownAddresses: own,
      allowLoopback: config.allowLoopbackPeers === true,
    });
  }

  /** A Prometheus registry of this server's counters (a worker hands it to the cluster aggregator). */
  metricsRegistry(): Registry {
    return createMetricsRegistry(this.core);
  }

  /**
   * --workers: a plain TCP connection another worker handed here (its handle), to be served as a
   * new client `remote` whose stream starts with `bytes` (a Refresh with a ticket). `refused`:
   * it came back from the primary undelivered, and that Refresh is answered here (437 or 508).
   */
  adopt(handle: object, remote: TransportAddress, bytes: Buffer, refused?: 'busy' | 'gone'): void {
    const sock = socketOf(handle);
    if (this.#closing) {
      sock.destroy();
      return;
    }
    if (refused === undefined) this.core.stats.adopted++;
    this.#accept(sock, 'tcp', remote, refused ?? 'adopted');
    if (!sock.destroyed && bytes.length > 0) sock.emit('data', bytes);
  }

  /** Bytes held by TCP/TLS connections without an allocation, as last measured. */
  get unallocatedBytes(): number {
    return this.#unallocatedHeld;
  }

  /** UDP client sources remembered (those with an allocation or an Allocate under way). */
  get udpClientCount(): number {
    return this.#udpClients.size;
  }

  /** Listener addresses actually bound (port 0 resolved). */
  get addresses(): readonly { protocol: ClientTransport; address: string; port: number }[] {
    return this.#bound;
  }

  /** SIGHUP: new credentials and policy; allocations stay. */
  reload(lookup: CredentialLookup, peerPolicy: readonly PolicyRule[], allowedPeers: readonly PolicyRule[] = this.#config.allowedPeers ?? []): void {
    const config = { ...this.#config, lookup, peerPolicy, allowedPeers };
    this.#config = config;
    this.#own.reset(monotonicNow());
    this.core.reload(TurnServer.#policy(config, pickRelays(config), this.#own.addresses), lookup);
    this.#log.info('reloaded', { rules: peerPolicy.length });
  }

  /** Stops accepting, deletes every allocation, closes everything. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#timer) clearInterval(this.#timer);
    const closing: Promise<unknown>[] = [];
    for (const s of this.#tcpServers) closing.push(new Promise((resolve) => s.close(resolve)));
    this.core.closeAll();
    for (const c of this.#connections) c.destroy();
    for (const u of this.#udpListeners) closing.push(new Promise<void>((resolve) => u.close(() => resolve())));
    const metrics = this.#metricsServer;
    if (metrics) closing.push(new Promise((resolve) => metrics.close(resolve)));
    await Promise.all(closing);
    this.#log.info('server-stopped', {});
  }

  #tick(): void {
    this.core.tick();
    const now = monotonicNow();
    if (this.#own.changed(now)) {
      this.core.reload(TurnServer.#policy(this.#config, pickRelays(this.#config), this.#own.addresses), this.#config.lookup);
      this.#log.info('own-addresses-changed', {});
    }
    this.#udpClients.evictIdle(now);
  }

  async #listen(spec: ListenSpec): Promise<void> {
    if (spec.protocol === 'udp') return this.#listenUdp(spec);
    const proxy = spec.proxyHeader === true && spec.protocol === 'tcp';
    // Every connection's local port is the listener's: known once it listens, rather than asked
    // of each accepted socket (a getsockname(2) and an object per connection).
    let port = 0;
    const onConnection = (sock: Socket): void => (proxy ? this.#acceptProxied(sock, port) : this.#accept(sock, spec.protocol, undefined, undefined, port));
    let srv: TcpServer;
    if (spec.protocol === 'tls') {
      if (!this.#config.cert || !this.#config.key) throw new Error('tls:// listeners need --cert and --key');
      srv = createTlsServer(
        {
          cert: readFileSync(this.#config.cert),
          key: readFileSync(this.#config.key),
          handshakeTimeout: this.#config.tlsHandshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS,
        },
        onConnection,
      );
      // A failed TLS handshake (or one past the timeout) is the client's problem, not the server's;
      // with a listener here Node leaves closing the socket to us.
      srv.on('tlsClientError', (_err, tlsSocket) => tlsSocket.destroy());
    } else {
      srv = createTcpServer(onConnection);
    }
    srv.maxConnections = this.#config.maxConnections ?? 20_000;
    await listenOn(srv, { port: spec.port, host: spec.host }, (err) => {
      // libuv closes what it cannot accept and reports EMFILE only when even that fails.
      const code = errorCode(err);
      if (code === 'EMFILE' || code === 'ENFILE') this.#outOfDescriptors(code);
      else this.#log.error('listener-error', { error: code });
    });
    const a = srv.address();
    if (a && typeof a === 'object') {
      port = a.port;
      this.#bound.push({ protocol: spec.protocol, address: a.address, port: a.port });
    }
    this.#tcpServers.push(srv);
  }

  /**
   * A connection that starts with a PROXY line: read it (at most 107 bytes, within the allocate
   * deadline), then serve the rest of the stream as the client it names.
   */
  #acceptProxied(sock: Socket, localPort: number): void {
    if (this.#closing) {
      sock.destroy();
      return;
    }
    readProxyHeader(sock, this.#config.allocateDeadlineMs ?? ALLOCATE_DEADLINE_MS, (header, rest) => {
      if (header === undefined) {
        this.core.stats.malformed++;
        return;
      }
      const remote = header.source ?? addressOf(sock.remoteAddress, sock.remotePort);
      if (!remote || sock.destroyed) {
        sock.destroy();
        return;
      }
      this.#accept(sock, 'tcp', remote, undefined, localPort);
      if (rest.length > 0) sock.emit('data', rest);
    });
  }

  /**
   * `remote`: who the client is, when a PROXY line said so (default: the socket's peer).
   * `moved`: a connection another worker handed here ('adopted'), or one that came back ('busy',
   * 'gone'): it never moves again. `localPort`: the listener's port, when known.
   */
  #accept(sock: Socket, transport: ClientTransport, proxied?: TransportAddress, moved?: 'adopted' | 'busy' | 'gone', localPort?: number): void {
    if (this.#closing) {
      sock.destroy();
      return;
    }
    const remote = proxied ?? addressOf(sock.remoteAddress, sock.remotePort);
    if (!remote) {
      sock.destroy();
      return;
    }
    sock.setNoDelay(true);
    this.#connections.add(sock);
    // A connection another worker handed over has no byte counts from its stream's start: no extension.
    const link = new TcpLink(
      sock,
      this.#config.allocateDeadlineMs ?? ALLOCATE_DEADLINE_MS,
      this.core.stats,
      this.#timeBound,
      moved === undefined ? this.#feedback : undefined,
    );
    const client = new Client(transport, remote, link, `${transport}|${remote.address}|${remote.port}|${localPort || (sock.localPort ?? 0)}`);
    const core = this.core;
    const framer = new StreamFramer((frame, kind) => {
      if (kind === FrameKind.ChannelData) core.handleChannelData(client, frame);
      else core.handleStun(client, frame);
    }, this.#framerOptions);
    // Bytes this connection was last counted for in #unallocatedHeld (0 once it holds an allocation).
    let held = 0;
    const budget = this.#config.unallocatedBytes ?? UNALLOCATED_BYTES;
    /** Set when the core hands this connection to another worker (see ClientLink.handOff). */
    let leaving: { worker: number; frame: Buffer } | undefined;
    const sink = this.#config.handOffs;
    if (moved === 'busy' || moved === 'gone') link.handOff = () => moved;
    else if (moved === undefined && transport === 'tcp' && sink !== undefined) {
      // TLS cannot move (its session lives in this process): another worker's ticket gets 437.
      link.handOff = (worker, frame) => {
        const ready = sink.ready(worker);
        if (ready !== 'handed') return ready;
        leaving = { worker, frame: Buffer.from(frame) };
        framer.stop();
        return 'handed';
      };
    }
    const onClose = (): void => {
      this.#unallocatedHeld -= held;
      held = 0;
      link.cancelDeadline();
      link.stopFeedback();
      this.#connections.delete(sock);
      core.clientClosed(client);
    };
    const leave = (to: { worker: number; frame: Buffer }): void => {
      sock.off('data', onData);
      sock.off('close', onClose);
      onClose();
      // Paused, the socket reads at most up to its buffer's mark; detachHandle takes that back.
      sock.pause();
      const rest = Buffer.from(framer.rest());
      const go = (): void => {
        clearTimeout(timer);
        const detached = detachHandle(sock);
        if (detached === undefined || sink === undefined) return;
        sink.send({ worker: to.worker, handle: detached.handle, remote, bytes: Buffer.concat([to.frame, rest, ...detached.unread]) });
      };
      // What this worker still owes the client (an answer to a request sent before the Refresh)
      // goes out first, within the hand-off's bound; the worker taking over writes after it.
      const timer = link.queued === 0 ? undefined : setTimeout(destroySocket, HANDOFF_DRAIN_MS, sock);
      if (timer === undefined) return go();
      link.flush();
      sock.write(Buffer.alloc(0), go);
    };
    const onData = (chunk: Buffer): void => {
      link.onRead(chunk.length);
      let err;
      try {
        err = framer.push(chunk);
      } catch (e) {
        // A bug reached by this client's bytes costs this connection, never the process.
        this.#internalError(e);
        sock.destroy();
        return;
      }
      if (err) {
        // Not TURN framing: nothing sensible can follow on this stream.
        core.stats.malformed++;
        sock.destroy();
        return;
      }
      if (leaving !== undefined) return leave(leaving);
      // Before its allocation a connection is anyone's: what it makes the server hold (a half-read
      // frame of up to 64 KiB, answers it does not read) counts against one budget for all of
      // them. Measured after each read: drained answers are counted until the next one.
      const now = client.allocation === undefined && client.pendingAllocate === undefined ? framer.buffered + link.queued : 0;
      this.#unallocatedHeld += now - held;
      held = now;
      if (now > 0 && this.#unallocatedHeld > budget) {
        core.stats.countQuota('unallocated-bytes');
        sock.destroy();
      }
    };
    sock.on('data', onData);
    link.armDeadline();
    sock.on('error', ignoreError);
    sock.on('close', onClose);
  }

  async #listenUdp(spec: ListenSpec): Promise<void> {
    const family = spec.host.includes(':') ? 'udp6' : 'udp4';
    const sock = createSocket({ type: family, reuseAddr: false, lookup: literalLookup });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(spec.port, spec.host, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    sock.on('error', (err) => this.#log.warn('udp-listener-error', { error: errorCode(err) }));
    const clients = this.#udpClients;
    const core = this.core;
    const localPort = sock.address().port;
    sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      try {
        const known = clients.get(localPort, rinfo.address, rinfo.port, monotonicNow());
        if (known !== undefined) {
          core.handleClientDatagram(known, msg);
          return;
        }
        if (this.#closing) return;
        const now = monotonicNow();
        const admission = clients.admit(rinfo.address, msg, now);
        if (admission !== 'answer') {
          core.stats.countQuota(admission === 'full' ? 'udp-clients' : 'udp-unauthenticated');
          return;
        }
        const remote = addressOf(rinfo.address, rinfo.port);
        if (!remote) return;
        // A throwaway Client, kept only once it holds an allocation (or one is being made).
        const client = new Client('udp', remote, new UdpLink(sock, rinfo.port, rinfo.address), `udp|${remote.address}|${remote.port}|${localPort}`);
        core.handleClientDatagram(client, msg);
        if (client.allocation !== undefined || client.pendingAllocate !== undefined) clients.remember(localPort, rinfo.address, rinfo.port, client, now);
      } catch (e) {
        this.#internalError(e); // the datagram is lost, the listener lives on
      }
    });
    this.#udpListeners.push(sock);
    const a = sock.address();
    this.#bound.push({ protocol: 'udp', address: a.address, port: a.port });
  }

  /** An exception out of a socket handler: counted; logged once (no message: it may hold addresses). */
  #internalError(e: unknown): void {
    this.core.stats.internalErrors++;
    if (this.#internalErrorLogged) return;
    this.#internalErrorLogged = true;
    const err = e instanceof Error ? e : new Error('non-error thrown');
    this.#log.warn('internal-error', {
      error: errorCode(err),
      stack: (err.stack ?? '')
        .split('\n')
        .slice(1, 6)
        .map((l) => l.trim()),
      note: 'further internal errors are only counted (onionturn_internal_errors_total)',
    });
  }

  /**
   * Out of file descriptors: allocations get 508 and, silently inside libuv, new connections are
   * closed at accept. Counted, and said at most once a minute so the operator raises the limit.
   */
  #outOfDescriptors(code: string): void {
    this.core.stats.fdExhausted++;
    const now = monotonicNow();
    if (now - this.#fdWarnedAt < FD_WARNING_INTERVAL_MS) return;
    this.#fdWarnedAt = now;
    this.#log.warn('out-of-file-descriptors', {
      error: code,
      total: this.core.stats.fdExhausted,
      note: 'allocations are refused (508) and new connections closed; raise the limit (ulimit -n, LimitNOFILE, docker ulimits nofile)',
    });
  }

  #bindRelay(relay: Relay, done: (socket: RelaySocket | undefined) => void): void {
    const sock = createSocket({ type: relay.family === 'IPv4' ? 'udp4' : 'udp6', lookup: literalLookup });
    const onBindError = (err: Error): void => {
      sock.close();
      const code = errorCode(err);
      if (code === 'EMFILE' || code === 'ENFILE') this.#outOfDescriptors(code);
      done(undefined);
    };
    sock.once('error', onBindError);
    sock.bind({ port: relay.port, address: relay.bindAddress, exclusive: true }, () => {
      sock.off('error', onBindError);
      const socket = this.#relaySocket(sock, relay);
      // With workers, the others learn the address before the client does (it may be named as a
      // peer by another user at once).
      const relays = this.#config.relays;
      if (relays?.prepare) relays.prepare(relay, () => done(socket));
      else done(socket);
    });
  }

  /**
   * The bound relay socket's handlers, made outside #bindRelay: closures made there would keep
   * its scope, and with `done` the whole Allocate request, alive as long as the allocation.
   */
  #relaySocket(sock: UdpSocket, relay: Relay): UdpRelaySocket {
    const core = this.core;
    // Bursts from peers wait in the kernel rather than being dropped (clamped to rmem_max).
    try {
      sock.setRecvBufferSize(RELAY_RECV_BUFFER);
    } catch {
      // not fatal: the default buffer works, it just drops earlier under bursts
    }
    // Send errors (ICMP unreachable and the like) are not the server's errors.
    sock.on('error', ignoreError);
    sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      try {
        core.handlePeerDatagram(relay, msg, rinfo.address, rinfo.port);
      } catch (e) {
        this.#internalError(e);
      }
    });
    return new UdpRelaySocket(sock);
  }
}

function ignoreError(): void {}

class UdpRelaySocket implements RelaySocket {
  #closed = false;
  /** The peer the socket is connect()ed to (0/'' when not connected). */
  #port = 0;
  #address = '';
  constructor(readonly sock: UdpSocket) {}
  send(data: Buffer, offset: number, length: number, port: number, address: string): void {
    // A connected socket skips dgram's lookup and validation and the kernel's route lookup.
    if (port === this.#port && address === this.#address) this.sock.send(data, offset, length);
    else if (this.#port === 0) this.sock.send(data, offset, length, port, address);
  }
  setSolePeer(port: number | undefined, address: string | undefined): void {
    if (this.#closed) return;
    if (this.#port !== 0) {
      this.sock.disconnect();
      this.#port = 0;
      this.#address = '';
    }
    if (port === undefined || address === undefined) return;
    try {
      // literalLookup answers synchronously, so connect() has succeeded or failed when it returns;
      // a failure (EACCES for broadcast, ENETUNREACH) is only reported later, to the callback.
      // Only a socket that really has a remote address may be sent to without one.
      this.sock.connect(port, address, () => undefined);
      this.sock.remoteAddress();
      this.#port = port;
      this.#address = address;
    } catch {
      // stay unconnected: sends carry the address as before
    }
  }
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.sock.close();
  }
}

class UdpLink implements ClientLink {
  constructor(
    readonly sock: UdpSocket,
    readonly port: number,
    readonly address: string,
  ) {}
  sendMessage(message: Buffer): void {
    this.sock.send(message, this.port, this.address);
  }
  sendChannelData(channel: number, data: Buffer): void {
    const out = Buffer.allocUnsafe(4 + data.length);
    writeChannelDataHeader(out, 0, channel, data.length);
    data.copy(out, 4);
    this.sock.send(out, this.port, this.address);
  }
  close(): void {}
}

// TCP writes made while an event-loop turn relays a burst are copied into one buffer per
// connection and written once per turn (TcpBatchWriter, shared with the client shim): one write()
// per client per turn instead of a stream write per frame; a lone frame goes out at once. Beyond
// MAX_QUEUED waiting bytes frames are dropped (counted as backlog-full), and with a time bound
// relayed data that waited too long is dropped (counted as stale, in the writer's QueueDrops).
class TcpLink implements ClientLink {
  readonly #out: TcpBatchWriter;
  handOff?: (worker: number, frame: Buffer) => HandOffResult;
  #deadline: NodeJS.Timeout | undefined = undefined;
  constructor(
    readonly sock: Socket,
    /** See ALLOCATE_DEADLINE_MS. */
    readonly deadlineMs: number,
    readonly stats: CoreStats,
    timeBound: TimeBound | undefined,
    feedback: DelayFeedbackSessionOptions | undefined,
  ) {
    this.#out = new TcpBatchWriter(sock, MAX_QUEUED_UNALLOCATED, BURST_GAP_MS, timeBound);
    this.#feedbackOptions = feedback;
  }

  /** Bytes read from the client so far (the delay extension acknowledges totals from the stream's start). */
  #bytesIn = 0;
  readonly #feedbackOptions: DelayFeedbackSessionOptions | undefined;
  /** The delay extension's session once negotiated; its timer runs while data flows (reports, re-checks of the cap). */
  #df: DelayFeedbackSession | undefined = undefined;
  #dfTimer: NodeJS.Timeout | undefined = undefined;
  readonly #dfTick = (): void => {
    const df = this.#df as DelayFeedbackSession;
    const out = this.#out;
    out.kick();
    if (!df.active(perfNow()) && !out.held && out.batched === 0) this.stopFeedback();
  };

  /** A chunk of `n` bytes was read from the client. */
  onRead(n: number): void {
    this.#bytesIn += n;
    const df = this.#df;
    if (df === undefined) return;
    df.onRead(n);
    if (this.#dfTimer === undefined) this.#startFeedback();
  }

  negotiateDelayFeedback(): DelayFeedbackSession | undefined {
    const opts = this.#feedbackOptions;
    if (opts === undefined || this.sock.destroyed) return undefined;
    if (this.#df !== undefined) return this.#df;
    const df = new DelayFeedbackSession(opts, this.#out.written, this.#bytesIn);
    df.negotiate(perfNow());
    this.#df = df;
    this.#out.gate = df;
    return df;
  }

  delayReport(report: DelayReport): void {
    const df = this.#df;
    if (df === undefined) return;
    df.onReport(perfNow(), report);
    // The cap may have room now.
    this.#out.kick();
  }

  #startFeedback(): void {
    this.#dfTimer = setInterval(this.#dfTick, REPORT_INTERVAL_MS);
    this.#dfTimer.unref();
  }

  stopFeedback(): void {
    clearInterval(this.#dfTimer);
    this.#dfTimer = undefined;
  }

  /** Bytes waiting to be written. */
  get queued(): number {
    return this.#out.queued;
  }

  sendMessage(message: Buffer): void {
    if (!this.#out.append(message) && !this.sock.destroyed) this.stats.droppedBacklog++;
    if (this.#df !== undefined && this.#dfTimer === undefined) this.#startFeedback();
  }

  sendChannelData(channel: number, data: Buffer): void {
    const len = data.length;
    const pad = channelDataPadding(len);
    const out = this.#out;
    const at = out.reserve(4 + len + pad);
    if (at < 0) {
      if (!this.sock.destroyed) this.stats.droppedBacklog++;
      return;
    }
    const batch = out.buffer;
    writeChannelDataHeader(batch, at, channel, len);
    data.copy(batch, at + 4);
    if (pad > 0) batch.fill(0, at + 4 + len, at + 4 + len + pad);
    out.commit();
    if (this.#df !== undefined && this.#dfTimer === undefined) this.#startFeedback();
  }

  close(): void {
    this.sock.destroy();
  }

  /** Writes what is batched now. */
  flush(): void {
    this.#out.flush();
  }

  allocated(): void {
    this.cancelDeadline();
    this.#out.maxQueued = MAX_QUEUED;
  }

  released(): void {
    // Expired or refreshed to 0: back to where it was after accept.
    this.#out.maxQueued = MAX_QUEUED_UNALLOCATED;
    this.armDeadline();
  }

  /** At accept and whenever an allocation ends: allocate within deadlineMs or be closed. */
  armDeadline(): void {
    clearTimeout(this.#deadline);
    // The socket as the timer's argument: a closure here would keep this scope alive for as long
    // as the connection lives.
    this.#deadline = setTimeout(destroySocket, this.deadlineMs, this.sock);
    this.#deadline.unref();
  }

  cancelDeadline(): void {
    clearTimeout(this.#deadline);
    this.#deadline = undefined;
  }
}

function perfNow(): number {
  return performance.now();
}

function destroySocket(sock: Socket): void {
  sock.destroy();
}

export function addressOf(address: string | undefined, port: number | undefined): TransportAddress | undefined {
  if (address === undefined || port === undefined) return undefined;
  // Link-local IPv6 sources carry a zone ("fe80::1%eth0"); STUN addresses have no room for it.
  const zone = address.indexOf('%');
  if (zone >= 0) address = address.slice(0, zone);
  // Dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d; answer them in IPv4 terms.
  const v4 = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : undefined;
  const family: IpFamily = v4 || !address.includes(':') ? 'IPv4' : 'IPv6';
  return { family, address: v4 ?? address, port };
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** Relay bind/announce addresses per family, from --relay-ip/--external-ip or the listeners. */
export function pickRelays(config: Pick<TurnServerConfig, 'listen' | 'relayIps' | 'externalIps'>): { relay4?: RelayAddress; relay6?: RelayAddress } {
  const out: { relay4?: RelayAddress; relay6?: RelayAddress } = {};
  const relayIps = config.relayIps && config.relayIps.length > 0 ? config.relayIps : config.listen.map((l) => l.host).filter((h) => !isWildcard(h));
  for (const fam of ['IPv4', 'IPv6'] as const) {
    const isFam = (a: string): boolean => (fam === 'IPv6') === a.includes(':');
    const bind = relayIps.find(isFam);
    if (!bind) continue;
    const external = config.externalIps?.find(isFam) ?? bind;
    if (fam === 'IPv4') out.relay4 = { bind, external };
    else out.relay6 = { bind, external };
  }
  return out;
}
