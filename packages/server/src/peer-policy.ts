// Which peers the relay may talk to, in Tor's ExitPolicy syntax ("accept|reject ADDR[/MASK][:PORT]",
// first match wins). Matching works on address bytes, never on text, and IPv4-mapped IPv6
// addresses are matched as the IPv4 address they reach, so no spelling of a denied address
// slips through. The built-in deny list comes before the operator's rules, as Tor puts
// ExitPolicyRejectPrivate before ExitPolicy: "accept *:*" cannot reopen 127/8 or the cloud
// metadata service. An operator who wants a denied range names it (--allow-peer).
import { parseIPv4, parseIPv6 } from '@onionturn/protocol';

export interface PolicyRule {
  readonly accept: boolean;
  /** 4 or 6; undefined matches both (`*`). */
  readonly family: 4 | 6 | undefined;
  /** Network bytes (4 or 16); empty for wildcards. */
  readonly network: Buffer;
  readonly bits: number;
  readonly portMin: number;
  readonly portMax: number;
  /** The rule as written, for logs and errors. */
  readonly text: string;
}

export type PolicyParse = { readonly ok: true; readonly rule: PolicyRule } | { readonly ok: false; readonly reason: string };

/** IPv4 ranges no relay beside a Tor exit should reach (plus their IPv6 spellings, below). */
export const DEFAULT_DENIED_IPV4: readonly string[] = [
  '0.0.0.0/8',
  '127.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '255.255.255.255/32',
  // Cloud wire servers and metadata endpoints outside the reserved ranges (Azure's WireServer and
  // DNS); 169.254.169.254, 100.100.100.200 (Alibaba) and fd00:ec2::254 are covered above/below.
  '168.63.129.16/32',
];

export const DEFAULT_DENIED_IPV6: readonly string[] = [
  '::/128',
  '::1/128',
  // IPv4-compatible addresses (RFC 4291 §2.5.5.1, deprecated, routed nowhere). Denied whole: Node
  // reports their datagrams in dotted form ("::8.8.8.8"), so replies would not match anyway.
  '::/96',
  // IPv4-translated addresses (SIIT, RFC 2765), deprecated site-local, IPv6 benchmarking (as
  // 198.18/15 is for IPv4).
  '::ffff:0:0:0/96',
  'fec0::/10',
  '2001:2::/48',
  '64:ff9b::/96',
  '64:ff9b:1::/48',
  '100::/64',
  '2001::/32',
  '2001:db8::/32',
  '2002::/16',
  'fc00::/7',
  'fe80::/10',
  'ff00::/8',
];

/**
 * UDP ports no relay beside an exit should send to by default, appended after the operator's rules
 * as Tor appends its default exit policy: "accept *:123" in --peer-policy reopens one. A TURN
 * relay cannot spoof its source, so these are not about reflecting floods at third parties (the
 * answers come back to the relay, and to the client through Tor); they are services whose only
 * use from an anonymous exit is abuse or reconnaissance, and whose traffic gets exits reported:
 * amplifiers that scanners hunt for, unauthenticated management and LAN discovery protocols.
 * The README's exit-side section gives the reason per port.
 */
export const DEFAULT_DENIED_UDP_PORTS: readonly string[] = [
  '7', // echo: reflection loops with other echo/chargen hosts
  '17', // QOTD: amplifier
  '19', // chargen: amplifier (x358), loops with echo
  '69', // TFTP: unauthenticated file reads from devices; amplifier
  '111', // portmapper/rpcbind: amplifier, RPC service discovery
  '123', // NTP: monlist amplifier (x556); time through Tor is too jittery to be of use
  '137-138', // NetBIOS name/datagram: Windows LAN discovery (Tor rejects 135-139 too)
  '161-162', // SNMP: device management with default communities; amplifier
  '389', // CLDAP: amplifier (x56-70)
  '427', // SLP: amplifier (x2200, CVE-2023-29552)
  '520', // RIP: routing updates
  '623', // IPMI/RMCP: server management controllers
  '1434', // MS-SQL browser: amplifier
  '1900', // SSDP/UPnP: LAN discovery; amplifier
  '3283', // Apple Remote Desktop: amplifier
  '3702', // WS-Discovery: amplifier (x500)
  '5353', // mDNS: link-local discovery; any use across the Internet is scanning
  '5683', // CoAP: IoT devices; amplifier
  '10001', // Ubiquiti discovery: amplifier
  '11211', // memcached: amplifier (x51000), unauthenticated writes
];

/** The ports of DEFAULT_DENIED_UDP_PORTS, one entry per port: looked up after the rules. */
function deniedPortSet(): ReadonlySet<number> {
  const ports = new Set<number>();
  for (const text of DEFAULT_DENIED_UDP_PORTS) {
    const r = parsePorts(text) as { min: number; max: number };
    for (let p = r.min; p <= r.max; p++) ports.add(p);
  }
  return ports;
}

const LOOPBACK_RULES = ['accept 127.0.0.0/8:*', 'accept [::1]:*'];

function parsePorts(text: string | undefined): { min: number; max: number } | undefined {
  if (text === undefined || text === '*') return { min: 0, max: 65535 };
  const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(text);
  if (!m) return undefined;
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : Number(m[2]);
  if (min > 65535 || max > 65535 || min > max) return undefined;
  return { min, max };
}

function maskBits(mask: string, family: 4 | 6): number | undefined {
  if (/^[0-9]{1,3}$/.test(mask)) {
    const bits = Number(mask);
    return bits <= (family === 4 ? 32 : 128) ? bits : undefined;
  }
  // Tor also accepts a dotted IPv4 netmask; only contiguous ones make sense.
  if (family !== 4) return undefined;
  const b = parseIPv4(mask);
  if (!b) return undefined;
  const n = b.readUInt32BE(0);
  const bits = 32 - Math.log2((~n >>> 0) + 1 || 2 ** 32);
  return Number.isInteger(bits) ? bits : undefined;
}

/** Parses an --allow-peer value, CIDR[:PORTS] ("10.1.0.0/16:3478-3479", "[fd00::]/8"), as an accept rule. */
export function parseAllowPeer(text: string): PolicyParse {
  const r = parsePolicyRule(`accept ${text.trim()}`);
  if (r.ok && r.rule.network.length === 0) return { ok: false, reason: `bad --allow-peer '${text}': name an address range, not a wildcard` };
  return r.ok ? r : { ok: false, reason: r.reason.replace(/^bad peer policy rule 'accept /, "bad --allow-peer '") };
}

/** Parses one rule. Addresses must be strict literals: "127.1", "0x7f.0.0.1", "2130706433" are errors. */
export function parsePolicyRule(text: string): PolicyParse {
  const bad = (why: string): PolicyParse => ({ ok: false, reason: `bad peer policy rule '${text}': ${why}` });
  const m = /^\s*(accept|reject)(6?)\s+(\S+)\s*$/i.exec(text);
  if (!m) return bad('expected "accept|reject ADDR[/MASK][:PORT]"');
  const accept = (m[1] as string).toLowerCase() === 'accept';
  // As in Tor: accept6/reject6 lines are about IPv6 only; "*" there means "*6".
  const v6Only = m[2] === '6';
  let spec = m[3] as string;
  let portText: string | undefined;
  let addrText: string;
  if (spec.startsWith('[')) {
    const close = spec.indexOf(']');
    if (close < 0) return bad('unclosed [');
    addrText = spec.slice(1, close);
    spec = spec.slice(close + 1);
    const pm = /^(?:\/([0-9]{1,3}))?(?::(.+))?$/.exec(spec);
    if (!pm) return bad('expected /BITS or :PORT after the IPv6 address');
    const maskText = pm[1];
    portText = pm[2];
    const ip = parseIPv6(addrText);
    if (!ip) return bad(`'${addrText}' is not an IPv6 address`);
    const bits = maskText === undefined ? 128 : maskBits(maskText, 6);
    if (bits === undefined) return bad('bad mask');
    const ports = parsePorts(portText);
    if (!ports) return bad('bad port or port range');
    return { ok: true, rule: { accept, family: 6, network: applyMask(ip, bits), bits, portMin: ports.min, portMax: ports.max, text: text.trim() } };
  }
  const colon = spec.indexOf(':');
  if (colon >= 0) {
    portText = spec.slice(colon + 1);
    addrText = spec.slice(0, colon);
  } else {
    addrText = spec;
  }
  const ports = parsePorts(portText);
  if (!ports) return bad('bad port or port range');
  const slash = addrText.indexOf('/');
  const host = slash >= 0 ? addrText.slice(0, slash) : addrText;
  const maskText = slash >= 0 ? addrText.slice(slash + 1) : undefined;
  if (host === '*' || host === '*4' || host === '*6') {
    if (maskText !== undefined) return bad('a wildcard takes no mask');
    if (v6Only && host === '*4') return bad('accept6/reject6 lines apply to IPv6 only, not *4');
    const family = host === '*4' ? 4 : host === '*6' || v6Only ? 6 : undefined;
    return { ok: true, rule: { accept, family, network: Buffer.alloc(0), bits: 0, portMin: ports.min, portMax: ports.max, text: text.trim() } };
  }
  const ip = parseIPv4(host);
  if (ip && v6Only) return bad('accept6/reject6 lines apply to IPv6 only; write IPv4 rules with accept/reject');
  if (!ip) return bad(`'${host}' is not a dotted-quad IPv4 address (write IPv6 as [addr])`);
  const bits = maskText === undefined ? 32 : maskBits(maskText, 4);
  if (bits === undefined) return bad('bad mask');
  return { ok: true, rule: { accept, family: 4, network: applyMask(ip, bits), bits, portMin: ports.min, portMax: ports.max, text: text.trim() } };
}

function applyMask(ip: Buffer, bits: number): Buffer {
  const out = Buffer.from(ip);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    out[i] = (out[i] as number) & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

function prefixMatches(ip: Buffer, network: Buffer, bits: number): boolean {
  const full = bits >> 3;
  for (let i = 0; i < full; i++) if (ip[i] !== network[i]) return false;
  const rest = bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((ip[full] as number) & mask) === network[full];
}

function ruleMatches(rule: PolicyRule, ip: Buffer, port: number): boolean {
  if (port < rule.portMin || port > rule.portMax) return false;
  const family = ip.length === 4 ? 4 : 6;
  if (rule.family !== undefined && rule.family !== family) return false;
  if (rule.network.length === 0) return true;
  return rule.network.length === ip.length && prefixMatches(ip, rule.network, rule.bits);
}

function isMappedV4(ip: Buffer): boolean {
  if (ip.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return false;
  return ip[10] === 0xff && ip[11] === 0xff;
}

function must(text: string): PolicyRule {
  const r = parsePolicyRule(text);
  if (!r.ok) throw new Error(r.reason);
  return r.rule;
}

/** The built-in default: every denied IPv4 range in its IPv4, IPv4-mapped and IPv4-compatible forms. */
export function defaultDenyRules(): PolicyRule[] {
  const rules: PolicyRule[] = [];
  for (const cidr of DEFAULT_DENIED_IPV4) {
    const [addr, bits] = cidr.split('/') as [string, string];
    rules.push(must(`reject ${cidr}:*`));
    rules.push(must(`reject [::ffff:${addr}]/${96 + Number(bits)}:*`));
    rules.push(must(`reject [::${addr}]/${96 + Number(bits)}:*`));
  }
  for (const cidr of DEFAULT_DENIED_IPV6) {
    const [addr, bits] = cidr.split('/') as [string, string];
    rules.push(must(`reject [${addr}]/${bits}:*`));
  }
  return rules;
}

export interface PeerPolicyOptions {
  /** Operator rules (--peer-policy), after the built-in deny list. */
  readonly rules?: readonly PolicyRule[];
  /** Ranges the operator reopens on purpose (--allow-peer), before the deny list. */
  readonly allowed?: readonly PolicyRule[];
  /** The server's own addresses (listeners, relay, external, interfaces): always denied. */
  readonly ownAddresses?: readonly string[];
  /** Tests only: loopback peers (and own loopback addresses) are accepted. */
  readonly allowLoopback?: boolean;
  /** Deny DEFAULT_DENIED_UDP_PORTS when no rule decided, like rules appended after the operator's; default true. */
  readonly defaultPortRules?: boolean;
}

export class PeerPolicy {
  readonly #rules: readonly PolicyRule[];
  readonly #own: ReadonlySet<string>;
  /** The default UDP port rules as one lookup: 20 reject rules walked per peer cost more. */
  readonly #deniedPorts: ReadonlySet<number>;

  constructor(options: PeerPolicyOptions = {}) {
    const loopback = options.allowLoopback ? LOOPBACK_RULES.map(must) : [];
    const allowed = (options.allowed ?? []).map((r) => ({ ...r, accept: true }));
    this.#rules = [...loopback, ...allowed, ...defaultDenyRules(), ...(options.rules ?? [])];
    this.#deniedPorts = options.defaultPortRules === false ? new Set() : deniedPortSet();
    const own = new Set<string>();
    for (const a of options.ownAddresses ?? []) {
      const ip = a.includes(':') ? parseIPv6(a) : parseIPv4(a);
      if (!ip) continue;
      const canon = canonical(ip);
      if (options.allowLoopback && isLoopback(canon)) continue;
      own.add(canon.toString('hex'));
    }
    this.#own = own;
  }

  get rules(): readonly PolicyRule[] {
    return this.#rules;
  }

  /** True when relaying to ip (4 or 16 bytes) : port is allowed. */
  allows(ip: Buffer, port: number): boolean {
    const v = canonical(ip);
    if (this.#own.has(v.toString('hex'))) return false;
    for (const rule of this.#rules) {
      if (ruleMatches(rule, v, port)) return rule.accept;
      // An IPv6 rule with an address also sees the mapped form of an IPv4 peer (e.g. reject
      // [::ffff:a.b.c.d]/104); a wildcard "*6" rule is about IPv6 peers only.
      if (v.length === 4 && rule.family === 6 && rule.network.length > 0 && ruleMatches(rule, mapV4(v), port)) return rule.accept;
    }
    // Nothing matched: the default port rules (appended after the operator's, as Tor appends its
    // default exit policy), then accept, as Tor's policies end in an implicit accept.
    return !this.#deniedPorts.has(port);
  }
}

/** IPv4-mapped IPv6 addresses become their 4 IPv4 bytes: that is where a packet to them goes. */
export function canonical(ip: Buffer): Buffer {
  return isMappedV4(ip) ? ip.subarray(12, 16) : ip;
}

function mapV4(v4: Buffer): Buffer {
  const out = Buffer.alloc(16);
  out[10] = 0xff;
  out[11] = 0xff;
  v4.copy(out, 12);
  return out;
}

function isLoopback(ip: Buffer): boolean {
  if (ip.length === 4) return ip[0] === 127;
  for (let i = 0; i < 15; i++) if (ip[i] !== 0) return false;
  return ip[15] === 1;
}
