// UDP port forwards (--forward udp://127.0.0.1:LPORT=HOST:PORT), for apps that cannot speak SOCKS:
// each local source address is one DatagramAssociation to HOST:PORT, by the same routes as the
// SOCKS front end (IP: TURN at the exit-side server; name: resolved by Tor; .onion: a stream).
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { once } from 'node:events';
import { errorCode } from '@onionturn/io';
import { DatagramAssociation, type DatagramContext } from './datagram-association.js';
import { formatHostPort, isLoopbackAddress, parseHostPort, type HostPort } from './endpoints.js';
import { udpFlowKey } from './flow-table.js';
import { ipOnlyLookup } from './ip-only-lookup.js';
import { isOnionName, type SocksDestination } from './socks5-server-codec.js';

/** A forward's flow closes after this long without datagrams either way. */
export const FORWARD_IDLE_MS = 120_000;

export interface ForwardSpec {
  readonly listen: HostPort;
  readonly target: SocksDestination;
  /** As the user wrote it (logged only in detail mode). */
  readonly text: string;
}

export type ForwardParse = { readonly ok: true; readonly value: ForwardSpec } | { readonly ok: false; readonly reason: string };

const FORM = 'use udp://127.0.0.1:LPORT=HOST:PORT, e.g. udp://127.0.0.1:5353=203.0.113.7:53';

/** Parses one --forward value. */
export function parseForward(text: string): ForwardParse {
  const m = /^udp:\/\/(.+?)=(.+)$/.exec(text);
  if (!m) return { ok: false, reason: `'${text}' is not a UDP forward: ${FORM}` };
  const l = parseHostPort(m[1] as string);
  if (!l.ok) return { ok: false, reason: `local side of '${text}': ${l.reason}; ${FORM}` };
  if (isIP(l.value.host) === 0 || !isLoopbackAddress(l.value.host))
    return { ok: false, reason: `local side of '${text}' must be a loopback IP address (127.0.0.1 or ::1): forwards serve this machine only` };
  if (l.value.port === 0) return { ok: false, reason: `local side of '${text}' needs a port (LPORT 1-65535)` };
  const t = parseHostPort(m[2] as string);
  if (!t.ok) return { ok: false, reason: `target of '${text}': ${t.reason}; ${FORM}` };
  if (t.value.port === 0) return { ok: false, reason: `target of '${text}' needs a port (1-65535)` };
  const host = t.value.host;
  const fam = isIP(host);
  const target: SocksDestination = { address: fam === 0 ? { kind: 'name', host } : { kind: 'ip', host, family: fam === 4 ? 4 : 6 }, port: t.value.port };
  return { ok: true, value: { listen: l.value, target, text } };
}

/** True when the forward's target is an onion service (it needs no upstream credentials). */
export function isOnionForward(spec: ForwardSpec): boolean {
  return spec.target.address.kind === 'name' && isOnionName(spec.target.address.host);
}

export class UdpForward {
  readonly #ctx: DatagramContext;
  readonly #spec: ForwardSpec;
  readonly #flows = new Map<string, DatagramAssociation>();
  #udp: UdpSocket | undefined;

  constructor(ctx: DatagramContext, spec: ForwardSpec) {
    this.#ctx = ctx;
    this.#spec = spec;
  }

  get address(): HostPort {
    const a = this.#udp?.address();
    if (!a) throw new Error('forward is not listening');
    return { host: a.address, port: a.port };
  }

  async start(): Promise<HostPort> {
    const { host, port } = this.#spec.listen;
    const v6 = isIP(host) === 6;
    const udp = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6, lookup: ipOnlyLookup });
    const listening = once(udp, 'listening');
    udp.bind({ address: host, port, exclusive: true });
    await Promise.race([
      listening,
      once(udp, 'error').then(([e]) => Promise.reject(new Error(`cannot listen for --forward on ${formatHostPort(host, port)}: ${errorCode(e as Error)}`))),
    ]);
    udp.on('error', (err) => this.#ctx.logger.error(`forward listener error: ${errorCode(err)}`));
    udp.on('message', (msg, rinfo) => this.#onDatagram(msg, rinfo));
    this.#udp = udp;
    return this.address;
  }

  async stop(): Promise<void> {
    for (const f of [...this.#flows.values()]) f.close('shim stopping');
    const udp = this.#udp;
    this.#udp = undefined;
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
  }

  #onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    const stats = this.#ctx.stats.datagramFlows['udp-forward'];
    if (rinfo.port === 0) {
      stats.dropped['foreign-source']++;
      return;
    }
    try {
      const key = udpFlowKey(rinfo.address, rinfo.port);
      let flow = this.#flows.get(key);
      if (flow === undefined) {
        if (this.#ctx.table.full) {
          this.#ctx.stats.flowLimitRefused++;
          return;
        }
        const f: DatagramAssociation = new DatagramAssociation(this.#ctx, {
          kind: 'udp-forward',
          auth: this.#ctx.table.isolation.next(),
          takeHeld: true,
          idleMs: FORWARD_IDLE_MS,
          deliver: (_from, data) => this.#udp?.send(data, rinfo.port, rinfo.address),
          onClosed: () => {
            if (this.#flows.get(key) === f) this.#flows.delete(key);
          },
        });
        flow = f;
        this.#flows.set(key, f);
        f.start();
      }
      flow.send(this.#spec.target, msg);
    } catch {
      this.#ctx.stats.internalErrors++;
    }
  }
}
