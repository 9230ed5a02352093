// The client shim's Node shell: a loopback UDP + TCP TURN listener on one port. It admits app
// flows (the flow limit, and in local mode only an authenticated Allocate) into the flow table,
// which picks each flow's Tor stream; each flow's decisions are its machine's (flow-machine.ts).
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { DEFAULT_MAX_QUEUE_DELAY_MS, errorCode, type TimeBound } from '@onionturn/io';
import { classifyFrame, encodeDelayFeedbackIndication } from '@onionturn/protocol';
import type { FlowContext, LocalAuthConfig } from './flow-context.js';
import { DEFAULT_QUEUE_LIMITS, type QueueLimits } from './flow-state.js';
import { NOT_TURN, isStunRequest, messageEnd } from './app-datagram.js';
import { answerFlowlessBinding, appTransportAddress } from './binding-answer.js';
import { AppAuthenticator } from './app-auth.js';
import { WRONG_LOCAL_CREDENTIALS } from './credential-resigner.js';
import { answerFlowless } from './flowless-request.js';
import { formatHostPort, isLoopbackAddress, type HostPort, type UpstreamServer } from './endpoints.js';
import type { IsolationMode } from './isolation.js';
import { scrubbing, type Logger, type ScrubbingLogger } from './logger.js';
import { ShimStats } from './stats.js';
import { TcpFlow } from './tcp-flow.js';
import { UdpFlow } from './udp-flow.js';
import { UpstreamDialer, type ServerHealth, type TlsTrust } from './upstream-dialer.js';
import { WarnEvery } from './warn-once.js';
import { DEFAULT_NEW_FLOWS_PER_SECOND } from './dial-pacer.js';
import { systemClock, type Clock } from './clock.js';
import { FlowTable, udpFlowKey } from './flow-table.js';
import { ServerChoice, type ServerChoiceMode, type ServerHealthView } from './server-choice.js';
import type { ReadyStreamOptions } from './ready-stream.js';
import { ipOnlyLookup } from './ip-only-lookup.js';
import type { FlowDriver } from './flow-driver.js';
import type { DatagramContext, OnionOpener } from './datagram-association.js';
import { ResolveCache } from './resolve-cache.js';
import { openOnionDatagramStream } from './onion-datagram-stream.js';
import { SocksFront } from './socks-front.js';
import { UdpForward, type ForwardSpec } from './udp-forward.js';
import type { CredentialSource } from './upstream-credentials.js';
import { CredentialsAhead } from './credentials-ahead.js';

export interface ShimOptions {
  readonly listen: HostPort;
  readonly allowRemote?: boolean;
  readonly servers: readonly UpstreamServer[];
  /** How new flows choose among the servers (default failover: the one that worked last). */
  readonly serverChoice?: ServerChoiceMode;
  /** First backoff of a server whose dial failed (default DEFAULT_SERVER_RETRY_MS). */
  readonly serverRetryMs?: number;
  /** A Tor stream kept open ahead of need while apps are active (the CLI passes DEFAULT_READY_STREAM); absent: none. */
  readonly readyStream?: ReadyStreamOptions;
  readonly socks: HostPort;
  readonly isolation?: IsolationMode;
  readonly logger: Logger;
  readonly tls?: TlsTrust;
  readonly udp?: boolean;
  readonly tcp?: boolean;
  readonly maxFlows?: number;
  readonly queueLimits?: QueueLimits;
  readonly connectTimeoutMs?: number;
  readonly maxUpstreamBacklog?: number;
  /**
   * App datagrams waiting longer than this (ms) to be written to their Tor stream are dropped (see
   * @onionturn/io's TimedQueue); 0: only the byte bound. Default DEFAULT_MAX_QUEUE_DELAY_MS.
   */
  readonly maxQueueDelayMs?: number;
  /**
   * Offer the delay extension (DELAY-FEEDBACK) to the server at Allocate on UDP flows' streams
   * (default true; needs maxQueueDelayMs > 0). A server that does not echo it (coturn) never
   * gets reports.
   */
  readonly delayFeedback?: boolean;
  /** Log app addresses and server names (SafeLogging off). */
  readonly detail?: boolean;
  /** Local-credential mode (absent: pass-through, the app's credentials go upstream untouched). */
  readonly localAuth?: LocalAuthConfig;
  /** Idle sweep period; the coarse clock ticks with it too. */
  readonly tickMs?: number;
  /**
   * Pass-through mode: new Tor streams allowed per second (0: no limit), in bursts of `burst`
   * (default four seconds' worth); see DialPacer. Local mode has none: a flow dials only once the
   * app has the local password, which a web page does not.
   */
  readonly newFlowRate?: { readonly perSecond: number; readonly burst?: number };
  /** How long a new flow waits for its turn to dial before it is closed (default 30 s). */
  readonly newFlowWaitMs?: number;
  /** The one source of time and timers (tests pass a ManualClock). */
  readonly clock?: Clock;
  /** SOCKS5 UDP ASSOCIATE front end on this loopback address (see socks-front.ts). */
  readonly socksListen?: HostPort;
  /** UDP port forwards (see udp-forward.ts). */
  readonly forwards?: readonly ForwardSpec[];
  /**
   * The shim's own upstream credentials, for SOCKS UDP and forwards to IP and host-name
   * destinations (it is the TURN client there). Absent: those destinations are dropped.
   */
  readonly datagramCredentials?: CredentialSource;
  /** Opens a datagram stream to an onion service (the datagram gateway's client). */
  readonly onion?: OnionOpener;
}

export interface ListeningAddress {
  readonly host: string;
  readonly port: number;
}

export class Shim {
  readonly stats = new ShimStats();
  readonly #opts: ShimOptions;
  readonly #ctx: FlowContext;
  readonly #table: FlowTable<FlowDriver>;
  readonly #dialer: UpstreamDialer;
  readonly #log: ScrubbingLogger;
  #udp: UdpSocket | undefined;
  #tcp: Server | undefined;
  #address: ListeningAddress | undefined;
  readonly #datagramCtx: DatagramContext;
  #socksFront: SocksFront | undefined;
  readonly #forwards: UdpForward[] = [];
  /** Local mode: wrong passwords from sources without a flow, logged now and then. */
  readonly #authWarning = new WarnEvery(60_000);
  readonly #dialRateWarning = new WarnEvery(60_000);

  constructor(opts: ShimOptions) {
    if (!opts.allowRemote && !isLoopbackAddress(opts.listen.host)) {
      throw new Error(`refusing to listen on ${opts.listen.host}: not a loopback address (use --allow-remote)`);
    }
    this.#opts = opts;
    const clock = opts.clock ?? systemClock;
    const detail = opts.detail ?? false;
    this.#log = scrubbing(opts.logger, detail);
    const rate = opts.localAuth ? { perSecond: 0 } : (opts.newFlowRate ?? { perSecond: DEFAULT_NEW_FLOWS_PER_SECOND });
    const dialer = new UpstreamDialer({
      servers: opts.servers,
      socks: opts.socks,
      connectTimeoutMs: opts.connectTimeoutMs ?? 30_000,
      tls: opts.tls ?? { pins: [] },
      logger: this.#log,
      detail,
      clock,
    });
    this.#dialer = dialer;
    // Local mode: a held stream's flow gets its upstream credential fetched ahead (credentials-ahead.ts).
    const ahead = opts.localAuth && opts.readyStream ? new CredentialsAhead(opts.localAuth.source) : undefined;
    const localAuth = opts.localAuth && ahead ? { ...opts.localAuth, source: ahead } : opts.localAuth;
    this.#table = new FlowTable<FlowDriver>({
      clock,
      maxFlows: opts.maxFlows ?? 256,
      isolation: opts.isolation ?? 'per-flow',
      tickMs: opts.tickMs ?? 1000,
      pacing: {
        ...rate,
        ...(opts.newFlowWaitMs !== undefined ? { waitMs: opts.newFlowWaitMs } : {}),
        onDelayed: (now) => this.#dialDelayed(now),
        onGivenUp: () => this.stats.dialRateRefused++,
      },
      servers: new ServerChoice(opts.servers.length, {
        mode: opts.serverChoice ?? 'failover',
        ...(opts.serverRetryMs !== undefined ? { retryMs: opts.serverRetryMs } : {}),
      }),
      connect: async (index, auth) => {
        const r = await dialer.dial(index, auth);
        if (!r.ok) this.stats.dialFailures[r.error.code] = (this.stats.dialFailures[r.error.code] ?? 0) + 1;
        return r;
      },
      onDialFailed: (flowId, index, error, next) => {
        const trying = next !== undefined ? `; trying ${dialer.serverName(next)}` : '';
        this.#log.warn(`upstream ${dialer.serverName(index)} failed: ${error.reason}${trying}`, { flow: flowId, code: error.code });
      },
      onFailover: (flowId, index) => this.#log.warn('upstream failover', { flow: flowId, now: dialer.serverName(index) }),
      ...(opts.readyStream ? { readyStream: opts.readyStream, onReadyTaken: () => this.stats.readyStreamsUsed++ } : {}),
      ...(ahead ? { onReadyHeld: (auth) => ahead.fetchAhead(auth, clock.now()), onReadyDropped: (auth) => ahead.forget(auth) } : {}),
    });
    const maxDelayMs = opts.maxQueueDelayMs ?? DEFAULT_MAX_QUEUE_DELAY_MS;
    const upstreamTimeBound: TimeBound | undefined = maxDelayMs > 0 ? { maxDelayMs, drops: this.stats.queueDrops, classify: classifyFrame } : undefined;
    this.#ctx = {
      table: this.#table,
      clock,
      logger: this.#log,
      stats: this.stats,
      queueLimits: opts.queueLimits ?? DEFAULT_QUEUE_LIMITS,
      maxUpstreamBacklog: opts.maxUpstreamBacklog ?? 1024 * 1024,
      upstreamTimeBound,
      delayFeedback:
        maxDelayMs > 0 && opts.delayFeedback !== false
          ? {
              staleMs: maxDelayMs,
              encode: encodeDelayFeedbackIndication,
              clock: () => performance.now(),
              counters: this.stats.delayFeedback,
              trace: (state) => this.#log.debug('delay-state', state),
            }
          : undefined,
      localAuth,
      appAuth: opts.localAuth
        ? new AppAuthenticator(opts.localAuth.local, opts.localAuth.nonceLifetimeMs !== undefined ? { nonceLifetimeMs: opts.localAuth.nonceLifetimeMs } : {})
        : undefined,
      serverName: (server) => dialer.serverName(dialer.servers.indexOf(server)),
    };
    this.#datagramCtx = {
      table: this.#table,
      clock,
      logger: this.#log,
      stats: this.stats,
      upstreamTimeBound,
      socks: opts.socks,
      // The same source as the TURN flows': a held stream's credential fetched ahead serves an association that takes it.
      credentials: ahead && opts.datagramCredentials === opts.localAuth?.source ? ahead : opts.datagramCredentials,
      resolveCache: new ResolveCache(),
      onion: opts.onion ?? openOnionDatagramStream,
    };
    this.onDatagram = this.onDatagram.bind(this);
  }

  /** The SOCKS front end's address (when --socks-listen is on). */
  get socksAddress(): ListeningAddress | undefined {
    return this.#socksFront?.address;
  }

  /** Where each forward listens, in the order given. */
  get forwardAddresses(): ListeningAddress[] {
    return this.#forwards.map((f) => f.address);
  }

  get address(): ListeningAddress {
    if (!this.#address) throw new Error('shim is not listening');
    return this.#address;
  }

  /** The upstream servers as given, the outcome of the last dial to each, and whether new flows may choose it. */
  get servers(): readonly { readonly server: UpstreamServer; readonly health: ServerHealth; readonly choice: ServerHealthView }[] {
    const now = this.#ctx.clock.monotonic();
    return this.#dialer.servers.map((server, i) => ({ server, health: this.#dialer.health[i] as ServerHealth, choice: this.#table.servers.view(i, now) }));
  }

  /** How new flows choose among the servers. */
  get serverChoice(): ServerChoiceMode {
    return this.#table.servers.mode;
  }

  /** New flows waiting for their turn to open a Tor stream (pass-through's --new-flows-per-second). */
  get dialQueue(): number {
    return this.#table.waiting;
  }

  /** Local-credential mode is on (the app authenticates to the shim). */
  get localMode(): boolean {
    return this.#opts.localAuth !== undefined;
  }

  /** Flows with an app side still open. */
  get activeFlows(): number {
    return this.#table.size;
  }

  async start(): Promise<ListeningAddress> {
    const { host } = this.#opts.listen;
    const wantUdp = this.#opts.udp !== false;
    const wantTcp = this.#opts.tcp !== false;
    // Port 0: take the TCP port the kernel picks and bind UDP to the same number (retry on clash).
    for (let attempt = 0; ; attempt++) {
      const tcp = wantTcp ? await this.#listenTcp(host, this.#opts.listen.port) : undefined;
      const port = tcp ? (tcp.address() as { port: number }).port : this.#opts.listen.port;
      try {
        this.#udp = wantUdp ? await this.#bindUdp(host, port) : undefined;
      } catch (err) {
        if (tcp) await new Promise<void>((r) => tcp.close(() => r()));
        if (this.#opts.listen.port === 0 && attempt < 10) continue;
        throw err;
      }
      this.#tcp = tcp;
      this.#address = { host, port: this.#udp ? this.#udp.address().port : port };
      break;
    }
    if (this.#opts.socksListen) {
      this.#socksFront = new SocksFront(this.#datagramCtx, this.#opts.socksListen);
      const a = await this.#socksFront.start();
      this.#log.info('SOCKS5 UDP front end listening', { listen: formatHostPort(a.host, a.port) });
    }
    for (const spec of this.#opts.forwards ?? []) {
      const f = new UdpForward(this.#datagramCtx, spec);
      this.#forwards.push(f);
      const a = await f.start();
      this.#log.info('UDP forward listening', { listen: formatHostPort(a.host, a.port), peer: spec.text });
    }
    this.#table.start();
    this.#log.info('listening', {
      listen: formatHostPort(this.#address.host, this.#address.port),
      udp: wantUdp,
      tcp: wantTcp,
      upstream: this.#opts.servers.map((_, i) => this.#dialer.serverName(i)),
      socks: formatHostPort(this.#opts.socks.host, this.#opts.socks.port),
      isolation: this.#table.isolation.mode,
      credentials: this.#opts.localAuth ? `local (upstream: ${this.#opts.localAuth.source.description})` : 'pass-through',
    });
    return this.#address;
  }

  async stop(): Promise<void> {
    this.#table.stop('shim stopping');
    await this.#socksFront?.stop();
    for (const f of this.#forwards) await f.stop();
    const tcp = this.#tcp;
    const udp = this.#udp;
    this.#tcp = undefined;
    this.#udp = undefined;
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
    if (tcp) await new Promise<void>((r) => tcp.close(() => r()));
  }

  #listenTcp(host: string, port: number): Promise<Server> {
    const server = createServer({ pauseOnConnect: true }, (sock) => this.#onConnection(sock));
    server.maxConnections = this.#opts.maxFlows ?? 256;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.removeListener('error', reject);
        server.on('error', (err) => this.#log.error(`TCP listener error: ${err.message}`));
        resolve(server);
      });
    });
  }

  async #bindUdp(host: string, port: number): Promise<UdpSocket> {
    // Replies go only to the IP a datagram came from: an identity lookup skips dns.lookup and its
    // nextTick on every send (hot path), and makes sure this socket never resolves a name.
    const sock = createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4', ipv6Only: isIP(host) === 6, lookup: ipOnlyLookup });
    const failed = once(sock, 'error');
    // Listen first: with a synchronous lookup, bind() emits 'listening' before it returns.
    const listening = once(sock, 'listening');
    sock.bind({ address: host, port, exclusive: true });
    await Promise.race([listening, failed.then(([e]) => Promise.reject(e as Error))]);
    // The code only: Node's dgram messages name the app's ip:port.
    sock.on('error', (err) => this.#log.error(`UDP listener error: ${errorCode(err)}`));
    sock.on('message', this.onDatagram);
    return sock;
  }

  #onConnection(sock: Socket): void {
    if (this.#table.fullFor(appTransportAddress(sock.remoteAddress, sock.remotePort)?.address ?? '')) {
      this.stats.flowLimitRefused++;
      sock.destroy();
      return;
    }
    const flow = new TcpFlow(this.#ctx, sock);
    this.#table.add(flow.driver);
    this.stats.flowsOpened++;
    flow.start();
  }

  private onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    // Linux delivers datagrams from source port 0, which no answer can reach (dgram.send throws).
    if (rinfo.port === 0) {
      this.stats.notTurnDropped++;
      return;
    }
    try {
      this.#handleDatagram(msg, rinfo);
    } catch {
      // A bug reached by one datagram costs that datagram, never the shim (no message: it may
      // name the app's address).
      this.stats.internalErrors++;
    }
  }

  #handleDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    const end = messageEnd(msg);
    if (end === NOT_TURN) {
      this.stats.notTurnDropped++;
      return;
    }
    let flow = this.#table.udpFlow(udpFlowKey(rinfo.address, rinfo.port));
    if (flow === undefined) {
      // Only a STUN request opens a Tor stream: stray ChannelData or responses are dropped.
      if (!isStunRequest(msg)) {
        this.stats.orphanDropped++;
        return;
      }
      // Local mode: only an authenticated Allocate makes a flow; the rest is answered statelessly.
      if (this.#ctx.appAuth && !this.#admit(this.#ctx.appAuth, msg, rinfo)) return;
      // Pass-through too: a Binding (any web page can make the browser send one to 127.0.0.1)
      // opens no Tor stream and learns nothing of the exit; it gets the app's own address.
      if (!this.#ctx.appAuth && !this.#admitPassThrough(msg, rinfo)) return;
      if (this.#table.fullFor(appTransportAddress(rinfo.address, rinfo.port)?.address ?? '')) {
        this.stats.flowLimitRefused++;
        return;
      }
      flow = new UdpFlow(this.#ctx, this.#udp as UdpSocket, rinfo.address, rinfo.port).driver;
      this.#table.add(flow);
      this.stats.flowsOpened++;
      flow.start();
    }
    flow.fromAppDatagram(msg, end);
  }

  /** Pass-through, a request from a source without a flow: false when it was a Binding, answered here. */
  #admitPassThrough(msg: Buffer, rinfo: RemoteInfo): boolean {
    const v = answerFlowlessBinding(msg, appTransportAddress(rinfo.address, rinfo.port));
    if (v.kind === 'other') return true;
    if (v.kind === 'answer') {
      this.stats.bindingsAnswered++;
      (this.#udp as UdpSocket).send(v.data, rinfo.port, rinfo.address);
    } else this.stats.orphanDropped++;
    return false;
  }

  /** Local mode, a request from a source without a flow: true when it may make one, else handled here. */
  #admit(auth: AppAuthenticator, msg: Buffer, rinfo: RemoteInfo): boolean {
    const v = answerFlowless(msg, appTransportAddress(rinfo.address, rinfo.port), auth, this.#table.now);
    if (v.kind === 'open') return true;
    if (v.kind === 'drop') {
      this.stats.orphanDropped++;
      return false;
    }
    const stats = this.stats;
    if (v.reason === 'binding') stats.bindingsAnswered++;
    else if (v.reason === 'no-allocation') stats.noAllocationAnswered++;
    else {
      stats.challengesAnswered++;
      if (v.reason === 'wrong-credentials') {
        stats.authFailures++;
        const notLogged = this.#authWarning.due(this.#table.now);
        if (notLogged !== undefined) this.#log.warn(WRONG_LOCAL_CREDENTIALS, notLogged > 0 ? { notLogged } : {});
      }
    }
    (this.#udp as UdpSocket).send(v.data, rinfo.port, rinfo.address);
    return false;
  }

  #dialDelayed(now: number): void {
    this.stats.dialsDelayed++;
    const notLogged = this.#dialRateWarning.due(now);
    if (notLogged !== undefined) {
      this.#log.warn(
        'new flows are coming faster than --new-flows-per-second allows: they wait their turn to open a Tor stream (a web page making WebRTC connections to the shim can cause this)',
        notLogged > 0 ? { notLogged } : {},
      );
    }
  }
}
