// torrc text for the private test network (facts in ../shared/TOR-TESTNET.md). Pure functions,
// so the configuration is unit-tested without starting tor.

/** How one tor process takes part in the network. */
export type TorRole = 'authority' | 'relay' | 'client' | 'onion';

export interface DirAuthority {
  readonly nickname: string;
  /** Where its ORPort and DirPort are (default 127.0.0.1). */
  readonly address?: string;
  readonly orPort: number;
  readonly dirPort: number;
  /** v3 identity: fingerprint of the authority identity key (tor-gencert). */
  readonly v3ident: string;
  /** RSA relay identity fingerprint (40 hex). */
  readonly fingerprint: string;
}

export interface TorrcOptions {
  readonly role: TorRole;
  readonly nickname: string;
  readonly dataDir: string;
  readonly controlPort: number;
  readonly authorities: readonly DirAuthority[];
  /** Relays and authorities: the address it publishes and its ORPort and DirPort listen on (default 127.0.0.1). */
  readonly address?: string;
  /** Relays and authorities. */
  readonly orPort?: number;
  readonly dirPort?: number;
  /**
   * Relays and authorities: the ORPort published in descriptors (a shaping proxy listens there
   * and forwards to orPort, which is then listen-only). Default: orPort itself.
   */
  readonly advertisedOrPort?: number;
  /**
   * Relays and authorities: RelayBandwidthRate = RelayBandwidthBurst in bytes/s (relayed traffic only,
   * so votes and directory fetches keep flowing; tor refuses < 76800), with
   * TokenBucketRefillInterval 10 msec so the bucket refills smoothly (tor's default is 100 ms steps).
   */
  readonly bandwidthRate?: number;
  /** Relays and authorities: exit to anything (and resolve names through resolvConf). */
  readonly exit?: boolean;
  /** Exits: resolv.conf naming the test DNS responder. */
  readonly resolvConf?: string;
  /** Clients: the SOCKS port on 127.0.0.1. */
  readonly socksPort?: number;
  /**
   * Clients: the relays (nicknames or fingerprints) their circuits take at each position
   * (EntryNodes, MiddleNodes, ExitNodes); default any.
   */
  readonly path?: { readonly entry?: string; readonly middle?: string; readonly exit?: string };
  /**
   * Authorities: V3AuthVotingInterval after the first consensus (default VOTING.interval). Tor
   * derives a testnet's HS time period from it (24 intervals); Onionbalance assumes chutney's 20.
   */
  readonly votingInterval?: number;
  /** Authorities: TestingV3AuthVotingStartOffset in seconds (see votingStartOffset). */
  readonly votingStartOffset?: number;
  /** Onion service tor: HiddenServiceDir and the ports it serves (virtual = local port). */
  readonly hiddenServiceDir?: string;
  readonly hiddenServicePorts?: readonly number[];
  /** Onion service tor: the loopback address the ports map to (default 127.0.0.1). */
  readonly hiddenServiceTargetHost?: string;
  /**
   * Onion service tor: HiddenServiceOnionbalanceInstance 1 (an Onionbalance backend; its
   * HiddenServiceDir must hold an ob_config naming the frontend, see onionbalanceObConfig).
   */
  readonly onionbalanceInstance?: boolean;
  /** Also write an info-level log to <dataDir>/info.log (debugging slow starts). */
  readonly infoLog?: boolean;
  /** Tor exits by itself within ~15 s once this PID is gone (a crashed test can't leak it). */
  readonly owningPid?: number;
}

/** The lowest BandwidthRate tor accepts, bytes/s (614.4 kbit/s). */
export const MIN_BANDWIDTH_RATE = 76_800;

/** Voting schedule: the lowest values tor accepts with TestingTorNetwork, stable on loopback. */
export const VOTING = {
  initialInterval: 5,
  initialVoteDelay: 2,
  initialDistDelay: 2,
  interval: 10,
  voteDelay: 2,
  distDelay: 2,
} as const;

/** `DirAuthority nick orport=P no-v2 v3ident=V ADDRESS:DIRPORT RSAFP` (ADDRESS default 127.0.0.1) */
export function dirAuthorityLine(a: DirAuthority): string {
  return `DirAuthority ${a.nickname} orport=${a.orPort} no-v2 v3ident=${a.v3ident} ${a.address ?? '127.0.0.1'}:${a.dirPort} ${a.fingerprint}`;
}

/**
 * TestingV3AuthVotingStartOffset so that the first valid-after falls `leadSeconds` after
 * `nowMs`: valid-after times are multiples of the interval plus the offset, and tor only
 * accepts an offset no larger than the initial interval.
 */
export function votingStartOffset(nowMs: number, leadSeconds: number, interval: number = VOTING.initialInterval): number {
  const target = Math.ceil(nowMs / 1000) + leadSeconds;
  return ((target % interval) + interval) % interval;
}

/** The full torrc for one process. Throws when an option the role needs is missing. */
export function buildTorrc(o: TorrcOptions): string {
  const need = <T>(value: T | undefined, name: string): T => {
    if (value === undefined) throw new Error(`torrc for ${o.role} ${o.nickname} needs ${name}`);
    return value;
  };
  if (o.authorities.length === 0) throw new Error('torrc needs at least one DirAuthority');
  for (const path of [o.dataDir, o.resolvConf, o.hiddenServiceDir]) {
    // torrc values end at whitespace/comments; our paths come from mkdtemp, so refuse oddities.
    if (path !== undefined && /[\s"#\\]/.test(path)) throw new Error(`torrc path must not contain whitespace, quotes, # or \\: ${path}`);
  }
  const lines: string[] = [
    `# ${o.role} ${o.nickname}: private Tor test network on loopback`,
    'TestingTorNetwork 1',
    `Nickname ${o.nickname}`,
    `DataDirectory ${o.dataDir}`,
    `PidFile ${o.dataDir}/pid`,
    'RunAsDaemon 0',
    `Log notice file ${o.dataDir}/notice.log`,
    `ControlPort 127.0.0.1:${o.controlPort}`,
    'CookieAuthentication 0',
    'SafeLogging 0',
    'AssumeReachable 1',
    'PathsNeededToBuildCircuits 0.67',
    'TestingDirAuthVoteExit *',
    'TestingDirAuthVoteGuard *',
    'TestingDirAuthVoteHSDir *',
    'TestingMinExitFlagThreshold 0',
    'V3AuthNIntervalsValid 2',
    'GeoIPFile ""',
    'GeoIPv6File ""',
    'NumCPUs 1',
    'ShutdownWaitLength 0',
    ...o.authorities.map(dirAuthorityLine),
  ];
  if (o.infoLog === true) lines.push(`Log info file ${o.dataDir}/info.log`);
  if (o.owningPid !== undefined) lines.push(`__OwningControllerProcess ${o.owningPid}`);

  if (o.role === 'authority' || o.role === 'relay') {
    const address = o.address ?? '127.0.0.1';
    lines.push(
      'SocksPort 0',
      `Address ${address}`,
      ...(o.advertisedOrPort === undefined || o.advertisedOrPort === o.orPort
        ? [`ORPort ${address}:${need(o.orPort, 'orPort')}`]
        : [`ORPort ${address}:${o.advertisedOrPort} NoListen`, `ORPort ${address}:${need(o.orPort, 'orPort')} NoAdvertise`]),
      `DirPort ${address}:${need(o.dirPort, 'dirPort')}`,
      // Connections to other relays leave from it too (a router may sort traffic by it).
      ...(o.address === undefined ? [] : [`OutboundBindAddressOR ${address}`]),
    );
    if (o.bandwidthRate !== undefined) {
      if (!Number.isInteger(o.bandwidthRate) || o.bandwidthRate < MIN_BANDWIDTH_RATE)
        throw new Error(`BandwidthRate must be an integer >= ${MIN_BANDWIDTH_RATE} bytes/s (tor's minimum), not ${o.bandwidthRate}`);
      lines.push(`RelayBandwidthRate ${o.bandwidthRate}`, `RelayBandwidthBurst ${o.bandwidthRate}`, 'TokenBucketRefillInterval 10 msec');
    }
    if (o.exit === true) {
      // A loopback-only policy leaves clients with "no exit nodes": microdescriptor policy
      // summaries ignore private accepts. The network itself only exists on loopback.
      lines.push(
        'ExitRelay 1',
        'ExitPolicy accept *:*',
        // ...so bind exit connections to loopback: a non-loopback destination then fails locally.
        'OutboundBindAddressExit 127.0.0.1',
        `ServerDNSResolvConfFile ${need(o.resolvConf, 'resolvConf')}`,
        'ServerDNSDetectHijacking 0',
      );
    } else {
      lines.push('ExitRelay 0', 'ExitPolicy reject *:*');
    }
  }
  if (o.role === 'authority') {
    lines.push(
      'AuthoritativeDirectory 1',
      'V3AuthoritativeDirectory 1',
      // Every relay Stable from the first vote: tor samples its guards once, from the Stable ones,
      // and a client whose EntryNodes relay was not yet Stable then had no first hop.
      'AuthDirVoteStableGuaranteeMinUptime 0',
      `TestingV3AuthInitialVotingInterval ${VOTING.initialInterval}`,
      `TestingV3AuthInitialVoteDelay ${VOTING.initialVoteDelay}`,
      `TestingV3AuthInitialDistDelay ${VOTING.initialDistDelay}`,
      `V3AuthVotingInterval ${o.votingInterval ?? VOTING.interval}`,
      `V3AuthVoteDelay ${VOTING.voteDelay}`,
      `V3AuthDistDelay ${VOTING.distDelay}`,
      `TestingV3AuthVotingStartOffset ${need(o.votingStartOffset, 'votingStartOffset')}`,
    );
  }
  if (o.role === 'client') {
    lines.push(`SocksPort 127.0.0.1:${need(o.socksPort, 'socksPort')}`);
    const path = o.path ?? {};
    const positions = [
      ['EntryNodes', path.entry],
      ['MiddleNodes', path.middle],
      ['ExitNodes', path.exit],
    ] as const;
    for (const [option, node] of positions) {
      if (node === undefined) continue;
      if (!/^[A-Za-z0-9$]{1,41}$/.test(node)) throw new Error(`${option} takes a relay nickname or fingerprint, not ${JSON.stringify(node)}`);
      lines.push(`${option} ${node}`);
    }
  }
  if (o.role === 'onion') {
    const ports = need(o.hiddenServicePorts, 'hiddenServicePorts');
    if (ports.length === 0) throw new Error(`torrc for onion ${o.nickname} needs at least one hidden service port`);
    lines.push('SocksPort 0', `HiddenServiceDir ${need(o.hiddenServiceDir, 'hiddenServiceDir')}`);
    const target = o.hiddenServiceTargetHost ?? '127.0.0.1';
    if (!/^127(\.\d{1,3}){3}$/.test(target)) throw new Error(`hidden service target must be an IPv4 loopback address, not ${target}`);
    for (const p of ports) lines.push(`HiddenServicePort ${p} ${target}:${p}`);
    if (o.onionbalanceInstance === true) lines.push('HiddenServiceOnionbalanceInstance 1');
  }
  return lines.join('\n') + '\n';
}

/** resolv.conf for exits: only the test DNS responder (evdns accepts host:port). */
export function resolvConf(dnsPort: number, dnsHost = '127.0.0.1'): string {
  return `nameserver ${dnsHost}:${dnsPort}\n`;
}

/** The ob_config file an Onionbalance backend's tor reads from its HiddenServiceDir. */
export function onionbalanceObConfig(frontendHostname: string): string {
  if (!/^[a-z2-7]{56}\.onion$/.test(frontendHostname)) throw new Error(`not a v3 onion hostname: ${frontendHostname}`);
  return `MasterOnionAddress ${frontendHostname}\n`;
}
