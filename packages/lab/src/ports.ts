// Free loopback ports for tools that need a fixed port number on their command line.
//
// Ports are picked below the kernel's ephemeral range (32768-60999 on Linux): a port taken from
// that range with bind(0) can be reused by the kernel as the source port of any outgoing
// connection (a tor relay's, say) before the tool binds it, and the tool then dies with
// EADDRINUSE. freePort uses 10000-19999, portRange 20000-32767, so the two never overlap.
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

const FREE_MIN = 10_000;
const FREE_SPAN = 10_000;
const RANGE_MIN = 20_000;
const RANGE_END = 32_768;

/** Ports this process handed out already: two tools in one test must not get the same one. */
const handedOut = new Set<number>();

function tcpFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

function udpFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    sock.once('error', () => resolve(false));
    sock.bind(port, host, () => sock.close(() => resolve(true)));
  });
}

/** Whether `port` is free for both TCP and UDP on host at the time of the call. */
export async function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return (await tcpFree(port, host)) && (await udpFree(port, host));
}

/** A port free for both TCP and UDP on host at the time of the call, never handed out before. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return firstFree(1, host, () => FREE_MIN + Math.floor(Math.random() * FREE_SPAN), `${FREE_MIN}-${FREE_MIN + FREE_SPAN - 1}`);
}

/** The first of `count` consecutive ports at a `pick`ed start that are all free and not handed out yet. */
async function firstFree(count: number, host: string, pick: () => number, span: string): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const min = pick();
    let free = true;
    for (let port = min; free && port < min + count; port++) free = !handedOut.has(port) && (await portFree(port, host));
    if (!free) continue;
    for (let port = min; port < min + count; port++) handedOut.add(port);
    return min;
  }
  throw new Error(`no ${count === 1 ? 'free TCP+UDP port' : `${count} consecutive free TCP+UDP ports`} on ${host} in ${span}`);
}

/** A range of `count` consecutive ports (relay ports), at a random offset in [20000, 32768). */
export function portRange(count: number): { min: number; max: number } {
  if (count > RANGE_END - RANGE_MIN) throw new Error(`portRange(${count}): at most ${RANGE_END - RANGE_MIN} ports`);
  const min = RANGE_MIN + Math.floor(Math.random() * (RANGE_END - RANGE_MIN - count + 1));
  return { min, max: min + count - 1 };
}

/**
 * A range of `count` consecutive ports, each free for TCP and UDP at the time of the call (see
 * portRange): for a server given exactly as many relay ports as a test allocates, where one port
 * taken by another test's server (their ranges are thousands of ports of the same span, and test
 * files run two at a time) would fail an allocation with 508.
 */
export async function freePortRange(count: number, host = '127.0.0.1'): Promise<{ min: number; max: number }> {
  const min = await firstFree(count, host, () => portRange(count).min, `${RANGE_MIN}-${RANGE_END - 1}`);
  return { min, max: min + count - 1 };
}
