// A minimal SOCKS5 CONNECT client (RFC 1928 + RFC 1929 username/password), enough to probe
// the test network; hostnames are sent to the proxy unresolved, like the shim does.
import { connect, isIPv4, isIPv6, type Socket } from 'node:net';

/** SOCKS5 reply codes (RFC 1928 §6); Tor answers 0x04 while an onion descriptor is missing. */
export const SOCKS5_REPLIES: Readonly<Record<number, string>> = {
  0x01: 'general SOCKS server failure',
  0x02: 'connection not allowed by ruleset',
  0x03: 'network unreachable',
  0x04: 'host unreachable',
  0x05: 'connection refused',
  0x06: 'TTL expired',
  0x07: 'command not supported',
  0x08: 'address type not supported',
};

export class Socks5Error extends Error {
  /** The proxy's reply code, or undefined when the failure was not a SOCKS reply. */
  readonly reply: number | undefined;
  constructor(message: string, reply?: number) {
    super(message);
    this.name = 'Socks5Error';
    this.reply = reply;
  }
}

export interface Socks5ConnectOptions {
  readonly proxyHost?: string;
  readonly proxyPort: number;
  /** Destination: an IPv4/IPv6 literal or a hostname (including .onion). */
  readonly host: string;
  readonly port: number;
  /** Username/password (Tor uses them for stream isolation, not authentication). */
  readonly username?: string;
  readonly password?: string;
  readonly timeoutMs?: number;
}

/** Opens a TCP stream through a SOCKS5 proxy; resolves once the proxy reports success. */
export async function socks5Connect(options: Socks5ConnectOptions): Promise<Socket> {
  const socket = connect({ host: options.proxyHost ?? '127.0.0.1', port: options.proxyPort });
  const timeoutMs = options.timeoutMs ?? 30_000;
  let buffered = Buffer.alloc(0);
  let waiter: (() => void) | undefined;
  let failure: Error | undefined;
  const onData = (chunk: Buffer): void => {
    buffered = Buffer.concat([buffered, chunk]);
    waiter?.();
  };
  const fail = (err: Error): void => {
    failure ??= err;
    waiter?.();
  };
  const onError = (err: Error): void => fail(new Socks5Error(`SOCKS5 proxy connection failed: ${err.message}`));
  const onClose = (): void => fail(new Socks5Error('SOCKS5 proxy closed the connection during the handshake'));
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('close', onClose);
  const timer = setTimeout(() => fail(new Socks5Error(`SOCKS5 CONNECT to ${options.host}:${options.port} timed out after ${timeoutMs} ms`)), timeoutMs);

  const read = async (n: number): Promise<Buffer> => {
    while (buffered.length < n) {
      if (failure) throw failure;
      await new Promise<void>((resolve) => (waiter = resolve));
      waiter = undefined;
    }
    if (failure) throw failure;
    const out = buffered.subarray(0, n);
    buffered = buffered.subarray(n);
    return out;
  };

  try {
    const withAuth = options.username !== undefined || options.password !== undefined;
    socket.write(Buffer.from(withAuth ? [5, 2, 0, 2] : [5, 1, 0]));
    const [version, method] = await read(2);
    if (version !== 5) throw new Socks5Error(`not a SOCKS5 proxy (version byte ${String(version)})`);
    if (method === 2) {
      const user = Buffer.from(options.username ?? '', 'utf8');
      const pass = Buffer.from(options.password ?? '', 'utf8');
      if (user.length > 255 || pass.length > 255) throw new Socks5Error('SOCKS5 username/password longer than 255 bytes');
      socket.write(Buffer.concat([Buffer.from([1, user.length]), user, Buffer.from([pass.length]), pass]));
      const [, status] = await read(2);
      if (status !== 0) throw new Socks5Error(`SOCKS5 username/password rejected (status ${String(status)})`);
    } else if (method !== 0) {
      throw new Socks5Error(`SOCKS5 proxy accepted no offered auth method (got 0x${(method ?? 0xff).toString(16)})`);
    }
    socket.write(Buffer.concat([Buffer.from([5, 1, 0]), encodeAddress(options.host), portBytes(options.port)]));
    const [, rep, , atyp] = await read(4);
    if (rep !== 0) {
      const code = rep ?? 0xff;
      throw new Socks5Error(
        `SOCKS5 CONNECT to ${options.host}:${options.port} failed: reply 0x${code.toString(16).padStart(2, '0')} (${SOCKS5_REPLIES[code] ?? 'unknown'})`,
        code,
      );
    }
    // Skip the bound address the proxy reports; its length depends on the address type.
    if (atyp === 1) await read(4 + 2);
    else if (atyp === 4) await read(16 + 2);
    else if (atyp === 3) await read((await read(1))[0]! + 2);
    else throw new Socks5Error(`SOCKS5 reply with unknown address type ${String(atyp)}`);
  } catch (err) {
    socket.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', onError);
    socket.off('close', onClose);
  }
  // Bytes that arrived right behind the reply belong to the application stream.
  if (buffered.length > 0) socket.unshift(buffered);
  return socket;
}

function encodeAddress(host: string): Buffer {
  if (isIPv4(host)) return Buffer.from([1, ...host.split('.').map(Number)]);
  if (isIPv6(host)) return Buffer.concat([Buffer.from([4]), ipv6Bytes(host)]);
  const name = Buffer.from(host, 'utf8');
  if (name.length === 0 || name.length > 255) throw new Socks5Error(`SOCKS5 hostname length ${name.length} out of range`);
  return Buffer.concat([Buffer.from([3, name.length]), name]);
}

function ipv6Bytes(host: string): Buffer {
  const [head = '', tail] = host.split('::');
  const parts = (s: string): string[] => (s ? s.split(':') : []);
  const left = parts(head);
  const right = tail === undefined ? [] : parts(tail);
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) {
    throw new Socks5Error(`unsupported IPv6 literal ${host} (embedded IPv4 forms are not handled)`);
  }
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function portBytes(port: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(port, 0);
  return b;
}
