// The status page's Node shell: a loopback node:http server. What is answered is decided by
// status-guard.ts and status-model.ts; this file only reads the shim and tor and writes answers.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenOn } from '@onionturn/io';
import { systemClock, type Clock, type Timer } from './clock.js';
import { formatHostPort, isLoopbackAddress, type HostPort } from './endpoints.js';
import type { IceServer } from './ice-servers.js';
import type { Shim } from './shim.js';
import { SECURITY_HEADERS, routeStatusRequest } from './status-guard.js';
import { STATUS_CSS, STATUS_JS, statusPageHtml } from './status-page.js';
import { StatusHistory, TestCallTracker, statusJson, type ServerView, type ShimView, type TorView } from './status-model.js';
import { checkTorSocks, type TorSocksVerdict } from './tor-socks-check.js';

/** A SOCKS check at most this often, and only while someone looks at the page. */
const TOR_CHECK_EVERY_MS = 3000;

/** What the shell knows of tor; the CLI fills in the SOCKS port and the managed tor's progress. */
export class TorWatch {
  socks: HostPort | undefined;
  managed = false;
  bootstrapPercent: number | undefined;
  bootstrapSummary: string | undefined;
  /** Times our own tor died and was started again. */
  restarts = 0;
  #verdict: TorSocksVerdict | undefined;
  #checkedAt: number | undefined;
  #checking: Promise<void> | undefined;
  readonly #clock: Clock;
  readonly #check: (socks: HostPort) => Promise<TorSocksVerdict>;

  constructor(clock: Clock = systemClock, check: (socks: HostPort) => Promise<TorSocksVerdict> = (s) => checkTorSocks(s, 2000)) {
    this.#clock = clock;
    this.#check = check;
  }

  /** Checks the SOCKS port again when the last check is old; resolves when a check is done. */
  refresh(): Promise<void> {
    const socks = this.socks;
    if (socks === undefined) return Promise.resolve();
    const now = this.#clock.now();
    if (this.#checking) return this.#checking;
    if (this.#checkedAt !== undefined && now - this.#checkedAt < TOR_CHECK_EVERY_MS) return Promise.resolve();
    this.#checking = this.#check(socks).then((v) => {
      this.#verdict = v;
      this.#checkedAt = this.#clock.now();
      this.#checking = undefined;
    });
    return this.#checking;
  }

  view(): TorView {
    const v = this.#verdict;
    return {
      socks: this.socks ? formatHostPort(this.socks.host, this.socks.port) : undefined,
      managed: this.managed,
      bootstrapPercent: this.bootstrapPercent,
      bootstrapSummary: this.bootstrapSummary,
      restarts: this.restarts,
      verdict: v?.kind ?? 'unknown',
      verdictReason: v && v.kind !== 'tor' ? v.reason : undefined,
      checkedAt: this.#checkedAt,
    };
  }
}

export interface StatusServerOptions {
  readonly listen: HostPort;
  readonly tor: TorWatch;
  /** The shim once it runs (tor may still be bootstrapping before). */
  readonly shim: () => Shim | undefined;
  /** tls:// pins as sha256/BASE64, shown with the tls:// servers. */
  readonly pins: readonly string[];
  /** Local-credential mode: the iceServers the test call and the page's copy button use. */
  readonly iceServers: () => IceServer[] | undefined;
  /** Pass-through mode: where the app's credentials come from. */
  readonly credentialsNote: string;
  /** Prometheus text for /metrics. */
  readonly metrics: () => Promise<{ readonly contentType: string; readonly body: string }>;
  readonly clock?: Clock;
}

export class StatusServer {
  readonly #opts: StatusServerOptions;
  readonly #clock: Clock;
  /** Per start: the page carries it, the test call needs it. */
  readonly #token = randomBytes(24).toString('base64url');
  readonly #history = new StatusHistory();
  readonly #test = new TestCallTracker();
  #server: Server | undefined;
  #authority = '';
  #sampler: Timer | undefined;

  constructor(opts: StatusServerOptions) {
    if (!isLoopbackAddress(opts.listen.host)) throw new Error(`refusing to serve the status page on ${opts.listen.host}: not a loopback address`);
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
  }

  /** http://HOST:PORT/ */
  get url(): string {
    return `http://${this.#authority}/`;
  }

  async start(): Promise<HostPort> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500, SECURITY_HEADERS);
        res.end();
      });
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    server.maxHeadersCount = 50;
    // Errors once listening (EMFILE on accept) must not take the shim down; a refused page is enough.
    await listenOn(server, { host: this.#opts.listen.host, port: this.#opts.listen.port, exclusive: true }, () => undefined);
    const port = (server.address() as { port: number }).port;
    this.#server = server;
    // The graph covers the last two minutes whether or not the page was open.
    this.#sampler = this.#clock.every(1000, () => {
      const shim = this.#opts.shim();
      if (shim) this.#history.sample(this.#clock.now(), shim.stats);
    });
    this.#authority = formatHostPort(this.#opts.listen.host, port);
    return { host: this.#opts.listen.host, port };
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#sampler?.cancel();
    this.#sampler = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }

  #shimView(shim: Shim): ShimView {
    const pins = this.#opts.pins;
    const servers: ServerView[] = shim.servers.map(({ server, health, choice }) => ({
      label: server.label,
      transport: server.transport,
      reachable: health.reachable,
      lastDialAt: health.lastDialAt,
      lastError: health.lastError,
      healthy: choice.healthy,
      failuresInRow: choice.failuresInRow,
      retryInS: choice.retryInMs === undefined ? undefined : Math.ceil(choice.retryInMs / 1000),
      pins: server.transport === 'tls' ? pins : [],
    }));
    let listen = '(starting)';
    try {
      listen = formatHostPort(shim.address.host, shim.address.port);
    } catch {
      // not listening yet
    }
    return { listen, mode: shim.localMode ? 'local' : 'pass-through', serverChoice: shim.serverChoice, servers, stats: shim.stats, dialQueue: shim.dialQueue };
  }

  #turnUrls(): string[] {
    const shim = this.#opts.shim();
    try {
      const hp = shim ? formatHostPort(shim.address.host, shim.address.port) : undefined;
      return hp ? [`turn:${hp}?transport=udp`, `turn:${hp}?transport=tcp`] : [];
    } catch {
      return [];
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const route = routeStatusRequest({ method: req.method, url: req.url, headers: req.headers }, { authority: this.#authority, token: this.#token });
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    // Nothing is read from a request body: drain it so the connection can be reused.
    req.resume();
    switch (route.kind) {
      case 'refuse':
        send(route.status, 'text/plain; charset=utf-8', `${route.reason}\n`);
        return;
      case 'page': {
        const ice = this.#opts.iceServers();
        send(
          200,
          'text/html; charset=utf-8',
          statusPageHtml({
            token: this.#token,
            iceServersJson: ice ? JSON.stringify({ iceServers: ice }, null, 2) : undefined,
            credentialsNote: this.#opts.credentialsNote,
            turnUrls: this.#turnUrls(),
          }),
        );
        return;
      }
      case 'script':
        send(200, 'text/javascript; charset=utf-8', STATUS_JS);
        return;
      case 'style':
        send(200, 'text/css; charset=utf-8', STATUS_CSS);
        return;
      case 'metrics': {
        const m = await this.#opts.metrics();
        send(200, m.contentType, m.body);
        return;
      }
      case 'status': {
        await this.#opts.tor.refresh();
        // The history is sampled by the page's own timer (a second apart), not per poll.
        const shim = this.#opts.shim();
        const now = this.#clock.now();
        send(
          200,
          'application/json',
          JSON.stringify(statusJson(now, this.#opts.tor.view(), shim ? this.#shimView(shim) : undefined, this.#history, this.#test)),
        );
        return;
      }
      case 'test-call': {
        const shim = this.#opts.shim();
        if (!shim) {
          send(503, 'text/plain; charset=utf-8', 'the shim is not running yet (tor is starting)\n');
          return;
        }
        this.#test.start(this.#clock.now(), shim.stats);
        // Tor is checked now, so a failed call right after can say whether it is down.
        await this.#opts.tor.refresh();
        const ice = this.#opts.iceServers();
        send(200, 'application/json', JSON.stringify({ iceServers: ice ?? null, turnUrls: this.#turnUrls() }));
        return;
      }
    }
  }
}
