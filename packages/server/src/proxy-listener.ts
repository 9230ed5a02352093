// Reads the PROXY v1 line at the start of a socket (tor's HiddenServiceExportCircuitID haproxy)
// for the TURN listener and the credential endpoint alike: at most 107 bytes, within a deadline;
// the bytes after it are handed on untouched.
import type { Socket } from 'node:net';
import { parseProxyV1, type ProxyHeader } from './proxy-header.js';

export type ProxyHeaderOk = Extract<ProxyHeader, { kind: 'ok' }>;

/**
 * Calls done(header, rest) once the line is read, or destroys the socket (a stream without a
 * valid line, or none within deadlineMs) and calls done(undefined, empty).
 */
export function readProxyHeader(sock: Socket, deadlineMs: number, done: (header: ProxyHeaderOk | undefined, rest: Buffer) => void): void {
  let head: Buffer = Buffer.alloc(0);
  const finish = (header: ProxyHeaderOk | undefined, rest: Buffer): void => {
    clearTimeout(timer);
    sock.off('data', onData);
    sock.off('close', onClose);
    if (header === undefined) sock.destroy();
    done(header, rest);
  };
  const onData = (chunk: Buffer): void => {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
    const p = parseProxyV1(head);
    if (p.kind === 'incomplete') return;
    if (p.kind === 'error') finish(undefined, Buffer.alloc(0));
    else finish(p, head.subarray(p.length));
  };
  const onClose = (): void => finish(undefined, Buffer.alloc(0));
  const timer = setTimeout(onClose, deadlineMs);
  timer.unref();
  sock.on('data', onData);
  sock.on('close', onClose);
  sock.on('error', () => undefined);
}

/** The client identity a header names: "circuit:ID" behind an onion service, else its source address. */
export function proxySource(header: ProxyHeaderOk | undefined, fallback: string): string {
  if (header?.circuitId !== undefined) return `circuit:${header.circuitId}`;
  return header?.source?.address ?? fallback;
}
