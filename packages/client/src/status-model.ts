// What the status page shows, as plain JSON built from the shim's counters (pure: time passed in,
// no sockets). No usernames, no app or peer addresses: only counts, the user's own configuration
// (listen address, servers, SOCKS port) and what went wrong, by step.
import { DATAGRAM_FLOW_KINDS, FLOW_KIND_LABELS, type ShimStats } from './stats.js';

/** What is known of tor, filled in by the shell (the SOCKS check, the managed tor's progress). */
export interface TorView {
  /** The SOCKS port in use, or undefined while our own tor has not said yet. */
  readonly socks: string | undefined;
  /** A tor the shim started (bootstrap progress known) rather than one found running. */
  readonly managed: boolean;
  readonly bootstrapPercent: number | undefined;
  readonly bootstrapSummary: string | undefined;
  /** Our own tor: times it died and was started again. */
  readonly restarts: number;
  /** The last check of the SOCKS port (tor-socks-check.ts); 'unknown' before the first. */
  readonly verdict: 'tor' | 'not-tor' | 'unreachable' | 'unknown';
  readonly verdictReason: string | undefined;
  readonly checkedAt: number | undefined;
}

export interface ServerView {
  readonly label: string;
  readonly transport: string;
  readonly reachable: boolean | undefined;
  readonly lastDialAt: number | undefined;
  readonly lastError: string | undefined;
  /** Whether new flows may choose it (not in backoff after failed dials). */
  readonly healthy: boolean;
  /** Failed dials in a row. */
  readonly failuresInRow: number;
  /** In backoff: seconds until a new flow tries it again. */
  readonly retryInS: number | undefined;
  /** tls:// servers: the pinned keys (sha256/...), if any. */
  readonly pins: readonly string[];
}

/** The running shim, as the page needs it; undefined while tor is still bootstrapping. */
export interface ShimView {
  readonly listen: string;
  readonly mode: 'local' | 'pass-through';
  /** How new flows choose among the servers (--server-choice). */
  readonly serverChoice: string;
  readonly servers: readonly ServerView[];
  readonly stats: ShimStats;
  readonly dialQueue: number;
}

/** Drops, by why; their sum is the graph's drop line. */
export function dropsOf(s: ShimStats): Record<string, number> {
  return {
    'connect queue full': s.queueDropped,
    'Tor stream backlog full': s.backlogDropped,
    // Waited longer than --max-queue-delay-ms in a Tor stream's writer.
    stale: s.queueDrops.stale,
    // Arrived from the server later than --max-queue-delay-ms (its delay reports said so).
    'stale on arrival': s.staleArrivalDropped,
    'not TURN': s.notTurnDropped + s.appRefused,
    'no flow': s.orphanDropped,
    'flow limit': s.flowLimitRefused,
    'dial rate': s.dialRateRefused,
    'internal error': s.internalErrors,
    'stream gap (mobility)': s.gapDropped,
    // SOCKS UDP and UDP forwards: every reason summed over both kinds, by name.
    ...datagramDrops(s),
  };
}

function datagramDrops(s: ShimStats): Record<string, number> {
  const out: Record<string, number> = {};
  for (const kind of DATAGRAM_FLOW_KINDS) {
    for (const [reason, n] of Object.entries(s.datagramFlows[kind].dropped)) {
      const name = `datagram ${reason}`;
      out[name] = (out[name] ?? 0) + n;
    }
  }
  return out;
}

function sum(xs: Iterable<number>): number {
  let t = 0;
  for (const x of xs) t += x;
  return t;
}

/** Bytes both ways over every kind. */
function totalBytes(s: ShimStats): number {
  return sum([...s.kinds.values()].map((k) => k.bytesToServer + k.bytesToApp));
}

export interface HistoryPoint {
  /** Wall-clock ms. */
  readonly at: number;
  readonly bytesPerSecond: number;
  readonly dropsPerSecond: number;
}

/** The live graph's points: rates between samples, the last `size` of them. */
export class StatusHistory {
  readonly #size: number;
  readonly #minGapMs: number;
  readonly #points: HistoryPoint[] = [];
  #last: { at: number; bytes: number; drops: number } | undefined;

  constructor(size = 120, minGapMs = 900) {
    this.#size = size;
    this.#minGapMs = minGapMs;
  }

  /** Takes a sample unless the last one is under minGapMs old (many pollers cost one sample). */
  sample(now: number, stats: ShimStats): void {
    const last = this.#last;
    if (last !== undefined && now - last.at < this.#minGapMs) return;
    const bytes = totalBytes(stats);
    const drops = sum(Object.values(dropsOf(stats)));
    this.#last = { at: now, bytes, drops };
    if (last === undefined) return;
    const s = (now - last.at) / 1000;
    this.#points.push({ at: now, bytesPerSecond: Math.max(0, bytes - last.bytes) / s, dropsPerSecond: Math.max(0, drops - last.drops) / s });
    if (this.#points.length > this.#size) this.#points.shift();
  }

  get points(): readonly HistoryPoint[] {
    return this.#points;
  }
}

/** Where a test call failed, from what the shim saw meanwhile. */
export type FailedStep = 'socks' | 'tor' | 'server' | 'turn-auth' | 'peer-policy';

const STEP_TEXT: Readonly<Record<FailedStep, string>> = {
  socks: "the SOCKS port: nothing (or something that is not Tor) answers at tor's SOCKS port",
  tor: 'Tor: tor could not open a stream to the server (no circuit, or the exit could not reach it)',
  server: 'the server: it refused the connection, failed TLS or the pin, or its credential URL failed',
  'turn-auth': "TURN authentication: the credentials were refused (wrong, expired, or another server's secret)",
  'peer-policy': "the server's peer policy: it refused to relay to the other peer's address",
};

/** UpstreamErrorCode to the step it shows. */
const DIAL_STEP: Readonly<Record<string, FailedStep>> = {
  'socks-unreachable': 'socks',
  'socks-protocol': 'socks',
  'socks-auth': 'socks',
  'socks-reply': 'tor',
  timeout: 'tor',
  tls: 'server',
  'pin-mismatch': 'server',
  closed: 'server',
  credentials: 'server',
};

interface Baseline {
  readonly dialFailures: Readonly<Record<string, number>>;
  readonly authFailures: number;
  readonly turnAuthRefused: number;
  readonly peerRefused: number;
  readonly credentialFailures: number;
  readonly upstreamFailures: number;
}

function baselineOf(s: ShimStats): Baseline {
  return {
    dialFailures: { ...s.dialFailures },
    authFailures: s.authFailures,
    turnAuthRefused: s.turnAuthRefused,
    peerRefused: s.peerRefused,
    credentialFailures: s.credentialFailures,
    upstreamFailures: s.upstreamFailures,
  };
}

export interface TestCallView {
  readonly startedAt: number;
  /** The first step that went wrong since the test started, if any did. */
  readonly step: FailedStep | undefined;
  readonly detail: string | undefined;
}

/** The page's test call: counters at its start, so what failed since can be named. */
export class TestCallTracker {
  #startedAt: number | undefined;
  #base: Baseline | undefined;

  start(now: number, stats: ShimStats): void {
    this.#startedAt = now;
    this.#base = baselineOf(stats);
  }

  /** The steps in the order a call takes them; the first one that failed is the one to fix. */
  view(stats: ShimStats, tor: TorView): TestCallView | undefined {
    const base = this.#base;
    if (this.#startedAt === undefined || base === undefined) return undefined;
    const grew = (now: number, then: number): boolean => now > then;
    const failedCodes = Object.keys(stats.dialFailures).filter((c) => grew(stats.dialFailures[c] ?? 0, base.dialFailures[c] ?? 0));
    const steps = new Set<FailedStep>(failedCodes.map((c) => DIAL_STEP[c] ?? 'server'));
    if (tor.verdict === 'unreachable' || tor.verdict === 'not-tor') steps.add('socks');
    if (grew(stats.credentialFailures, base.credentialFailures)) steps.add('server');
    if (grew(stats.authFailures, base.authFailures) || grew(stats.turnAuthRefused, base.turnAuthRefused)) steps.add('turn-auth');
    if (grew(stats.peerRefused, base.peerRefused)) steps.add('peer-policy');
    const order: FailedStep[] = ['socks', 'tor', 'server', 'turn-auth', 'peer-policy'];
    const step = order.find((s) => steps.has(s));
    const detail = step === undefined ? undefined : `${STEP_TEXT[step]}${failedCodes.length > 0 ? ` (dial errors: ${failedCodes.join(', ')})` : ''}`;
    return { startedAt: this.#startedAt, step, detail };
  }
}

export interface KindView {
  readonly kind: string;
  readonly label: string;
  readonly open: number;
  readonly opened: number;
  readonly bytesToServer: number;
  readonly bytesToApp: number;
}

export interface StatusJson {
  readonly now: number;
  readonly tor: TorView & { readonly up: boolean };
  readonly shim:
    | {
        readonly listen: string;
        readonly mode: 'local' | 'pass-through';
        readonly serverChoice: string;
        readonly servers: readonly ServerView[];
        readonly flows: readonly KindView[];
        readonly openFlows: number;
        readonly drops: Readonly<Record<string, number>>;
        readonly dialQueue: number;
        readonly failures: {
          readonly dials: Readonly<Record<string, number>>;
          readonly turnAuth: number;
          readonly peerPolicy: number;
          readonly localAuth: number;
        };
      }
    | undefined;
  readonly history: readonly HistoryPoint[];
  readonly test: TestCallView | undefined;
}

/** The TURN kinds always show (zero rows tell the user what exists); others once seen. */
const ALWAYS_SHOWN = ['turn-udp', 'turn-tcp'];

export function flowKinds(stats: ShimStats): KindView[] {
  const used = [...stats.kinds].filter(([, k]) => k.opened > 0).map(([name]) => name);
  const names = [...new Set([...ALWAYS_SHOWN, ...used])];
  return names.map((kind) => {
    const k = stats.kind(kind);
    return { kind, label: FLOW_KIND_LABELS[kind] ?? kind, open: k.open, opened: k.opened, bytesToServer: k.bytesToServer, bytesToApp: k.bytesToApp };
  });
}

export function statusJson(now: number, tor: TorView, shim: ShimView | undefined, history: StatusHistory, test: TestCallTracker): StatusJson {
  const s = shim?.stats;
  return {
    now,
    tor: { ...tor, up: tor.verdict === 'tor' },
    shim:
      shim && s
        ? {
            listen: shim.listen,
            mode: shim.mode,
            serverChoice: shim.serverChoice,
            servers: shim.servers,
            flows: flowKinds(s),
            openFlows: sum([...s.kinds.values()].map((k) => k.open)),
            drops: dropsOf(s),
            dialQueue: shim.dialQueue,
            failures: { dials: { ...s.dialFailures }, turnAuth: s.turnAuthRefused, peerPolicy: s.peerRefused, localAuth: s.authFailures },
          }
        : undefined,
    history: history.points,
    test: s ? test.view(s, tor) : undefined,
  };
}
