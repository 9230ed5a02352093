// Resolves a host name through Tor (its SOCKS RESOLVE extension, command 0xF0): the exit resolves
// it, this machine never does. One short SOCKS connection per lookup, with the association's
// isolation credentials so the lookup rides the same circuit as its datagrams.
import { connect } from 'node:net';
import { errorCode } from '@onionturn/io';
import type { Clock } from './clock.js';
import type { HostPort } from './endpoints.js';
import { Reply, SOCKS_VERSION, replyText, type SocksAuth } from './socks5-codec.js';
import { SocksHandshake } from './socks5-handshake.js';
import { encodeResolve, parseResolveReply, type SocksAddress } from './socks5-server-codec.js';

export type ResolveResult = { readonly ok: true; readonly address: SocksAddress & { readonly kind: 'ip' } } | { readonly ok: false; readonly reason: string };

export interface TorResolveOptions {
  readonly proxy: HostPort;
  readonly name: string;
  readonly auth: SocksAuth | undefined;
  readonly timeoutMs: number;
  readonly clock: Clock;
}

export function torResolve(opts: TorResolveOptions): Promise<ResolveResult> {
  return new Promise((resolve) => {
    const sock = connect({ host: opts.proxy.host, port: opts.proxy.port });
    const handshake = new SocksHandshake(opts.auth);
    let requested = false;
    let buf: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (r: ResolveResult): void => {
      if (done) return;
      done = true;
      timer.cancel();
      sock.destroy();
      resolve(r);
    };
    const timer = opts.clock.after(opts.timeoutMs, () => finish({ ok: false, reason: `no answer from tor's RESOLVE within ${opts.timeoutMs} ms` }));
    sock.on('connect', () => sock.write(handshake.greeting()));
    sock.on('error', (e) => finish({ ok: false, reason: `tor's SOCKS port: ${errorCode(e)}` }));
    sock.on('close', () => finish({ ok: false, reason: `tor closed the RESOLVE connection during the ${requested ? 'reply' : handshake.step} step` }));
    sock.on('data', (chunk: Buffer) => {
      if (!requested) {
        let ev = handshake.push(chunk);
        while (ev.kind === 'write') {
          sock.write(ev.data);
          ev = handshake.push(Buffer.alloc(0));
        }
        if (ev.kind === 'need') return;
        if (ev.kind === 'fail')
          return finish({
            ok: false,
            reason: {
              'auth-refused': "tor's SOCKS port refused our isolation credentials",
              'no-method': "tor's SOCKS port accepts none of our methods",
              'not-socks5': "tor's SOCKS port does not speak SOCKS5",
            }[ev.failure.kind],
          });
        sock.write(encodeResolve(opts.name));
        requested = true;
        buf = ev.rest;
      } else buf = Buffer.concat([buf, chunk]);
      if (buf.length > 0 && buf[0] !== SOCKS_VERSION) return finish({ ok: false, reason: 'the RESOLVE reply is not SOCKS5' });
      const r = parseResolveReply(buf);
      if (r.kind === 'need') return;
      if (r.kind === 'bad') return finish({ ok: false, reason: r.reason });
      if (r.value.code !== Reply.Succeeded) return finish({ ok: false, reason: `tor could not resolve the name: ${replyText(r.value.code)}` });
      const a = r.value.address;
      if (!a || a.kind !== 'ip') return finish({ ok: false, reason: 'tor answered RESOLVE without an IP address' });
      finish({ ok: true, address: a });
    });
  });
}
