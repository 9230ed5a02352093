// Is the SOCKS proxy at --socks (or 9050/9150) Tor? An `ssh -D 9050` answers SOCKS5 too, and the
// shim's traffic would then leave without Tor. Two things only Tor does here: it accepts
// username/password authentication with any values (stream isolation relies on it), and it
// answers its own RESOLVE extension (command 0xF0); for an IP literal it answers at once, from
// no network. A proxy that fails either is not Tor.
import { connect } from 'node:net';
import { AUTH_VERSION, AuthMethod, Reply, SOCKS_VERSION } from './socks5-codec.js';
import type { HostPort } from './endpoints.js';
import { SocksCommand } from './socks5-server-codec.js';

export type TorSocksVerdict =
  { readonly kind: 'tor' } | { readonly kind: 'not-tor'; readonly reason: string } | { readonly kind: 'unreachable'; readonly reason: string };

/** The bytes sent, in order: offer username/password only, any credentials, RESOLVE 127.0.0.1. */
const STEPS: readonly Buffer[] = [
  Buffer.from([SOCKS_VERSION, 1, AuthMethod.UserPass]),
  Buffer.from([AUTH_VERSION, 7, ...Buffer.from('onionturn'.slice(0, 7)), 5, ...Buffer.from('probe')]),
  // Tor's RESOLVE of an IP literal: answered without the network.
  Buffer.from([SOCKS_VERSION, SocksCommand.TorResolve, 0, 0x01, 127, 0, 0, 1, 0, 0]),
];
/** Bytes of each answer: method choice, auth status, a RESOLVE reply with an IPv4 address. */
const ANSWER_LENGTHS = [2, 2, 10];

/** Judges the proxy's answers so far (pure): undefined while more bytes are needed. */
export function judgeTorAnswers(answers: readonly Buffer[]): TorSocksVerdict | undefined {
  const [method, auth, resolve] = answers;
  if (method === undefined) return undefined;
  if (method[0] !== SOCKS_VERSION) return { kind: 'not-tor', reason: 'it does not answer SOCKS5' };
  if (method[1] !== AuthMethod.UserPass) return { kind: 'not-tor', reason: 'it refuses username/password authentication, which Tor always accepts' };
  if (auth === undefined) return undefined;
  if (auth[1] !== 0x00) return { kind: 'not-tor', reason: 'it refused made-up credentials, which Tor accepts as isolation keys' };
  if (resolve === undefined) return undefined;
  if (resolve[0] !== SOCKS_VERSION || resolve[1] !== Reply.Succeeded) return { kind: 'not-tor', reason: "it does not answer Tor's RESOLVE extension" };
  return { kind: 'tor' };
}

/** Asks the proxy; at most timeoutMs. */
export function checkTorSocks(socks: HostPort, timeoutMs = 3000): Promise<TorSocksVerdict> {
  return new Promise((resolve) => {
    const sock = connect(socks.port, socks.host);
    const answers: Buffer[] = [];
    let pending = Buffer.alloc(0);
    let done = false;
    const finish = (v: TorSocksVerdict): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => finish({ kind: 'not-tor', reason: `it did not answer within ${timeoutMs} ms` }), timeoutMs);
    sock.on('connect', () => sock.write(STEPS[0] as Buffer));
    sock.on('error', (e: NodeJS.ErrnoException) =>
      finish(answers.length === 0 ? { kind: 'unreachable', reason: e.code ?? 'error' } : { kind: 'not-tor', reason: 'it closed the connection' }),
    );
    sock.on('close', () => finish({ kind: 'not-tor', reason: 'it closed the connection' }));
    sock.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (answers.length < ANSWER_LENGTHS.length && pending.length >= (ANSWER_LENGTHS[answers.length] as number)) {
        const n = ANSWER_LENGTHS[answers.length] as number;
        answers.push(pending.subarray(0, n));
        pending = pending.subarray(n);
        const verdict = judgeTorAnswers(answers);
        if (verdict) return finish(verdict);
        sock.write(STEPS[answers.length] as Buffer);
      }
    });
  });
}
