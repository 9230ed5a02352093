// Moving a TCP connection to another worker process (TURN mobility with --workers): the socket's
// handle goes over the cluster's IPC channel as a raw handle, with the bytes already read. Node
// offers no public way to stop a socket reading at the kernel and give up its handle: a paused
// socket still reads into its buffer, and Node's own socket sending leaves the handle reading
// (what arrives then is lost) until the receiver acknowledges. So this file touches Node's
// internal `_handle` (stable since Node 0.x), and nothing else does.
import { Socket, type SocketConstructorOpts } from 'node:net';

interface StreamHandle {
  reading?: boolean;
  readStop(): number;
  onread: unknown;
  close(cb?: () => void): void;
}

function nop(): void {}

/**
 * Stops `sock` reading from the kernel and takes its handle away from it: what the kernel holds
 * stays there for the next owner; bytes the socket had read but not handed out come back. The
 * socket object is destroyed (its server's connection count drops); the handle stays open until
 * `closeHandle` (after it was sent). Undefined when the socket has no handle (closed meanwhile).
 */
export function detachHandle(sock: Socket): { handle: object; unread: Buffer[] } | undefined {
  sock.pause();
  const unread: Buffer[] = [];
  for (let c = sock.read() as Buffer | null; c !== null; c = sock.read() as Buffer | null) unread.push(c);
  const s = sock as unknown as { _handle: StreamHandle | null };
  const handle = s._handle;
  if (handle === null || sock.destroyed) return undefined;
  handle.reading = false;
  handle.readStop();
  handle.onread = nop;
  s._handle = null;
  sock.destroy();
  return { handle, unread };
}

/** Closes this process's copy of a handle (the receiving process has its own). */
export function closeHandle(handle: object): void {
  (handle as StreamHandle).close();
}

/** A socket around a raw TCP handle received over IPC. */
export function socketOf(handle: object): Socket {
  return new Socket({ handle, readable: true, writable: true } as SocketConstructorOpts);
}
