// The SOCKS5 client handshake shared by CONNECT and Tor's RESOLVE, fed byte by byte and in one
// piece: no sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SocksHandshake, type HandshakeEvent } from '../src/socks5-handshake.js';

const AUTH = { username: 'iso-1', password: 'x' };

/** Feeds `bytes` one at a time, answering writes, and returns every event that was not 'need'. */
function feed(h: SocksHandshake, bytes: number[]): HandshakeEvent[] {
  const out: HandshakeEvent[] = [];
  for (const b of bytes) {
    let ev = h.push(Buffer.from([b]));
    while (ev.kind === 'write') {
      out.push(ev);
      ev = h.push(Buffer.alloc(0));
    }
    if (ev.kind !== 'need') out.push(ev);
  }
  return out;
}

test('username/password: the greeting offers it, the credentials are written, then ready with the bytes after', () => {
  const h = new SocksHandshake(AUTH);
  assert.deepEqual([...h.greeting()], [5, 2, 2, 0]);
  const one = h.push(Buffer.from([5, 2, 1, 0, 5, 0]));
  assert.equal(one.kind, 'write');
  assert.deepEqual(one.kind === 'write' && [...one.data], [1, 5, ...Buffer.from('iso-1'), 1, ...Buffer.from('x')]);
  const two = h.push(Buffer.alloc(0));
  assert.deepEqual(two.kind === 'ready' && { rest: [...two.rest], authIgnored: two.authIgnored }, { rest: [5, 0], authIgnored: false });
  assert.equal(h.step, 'done');
});

test('byte by byte gives the same events', () => {
  const events = feed(new SocksHandshake(AUTH), [5, 2, 1, 0]);
  assert.deepEqual(
    events.map((e) => e.kind),
    ['write', 'ready'],
  );
});

test('a proxy that ignores the credentials and picks no auth: ready, and says so', () => {
  const ev = new SocksHandshake(AUTH).push(Buffer.from([5, 0]));
  assert.deepEqual(ev.kind === 'ready' && ev.authIgnored, true);
  const plain = new SocksHandshake(undefined).push(Buffer.from([5, 0]));
  assert.deepEqual(plain.kind === 'ready' && plain.authIgnored, false);
});

test('failures: not SOCKS5, no acceptable method, credentials refused', () => {
  assert.deepEqual(new SocksHandshake(undefined).push(Buffer.from('HTTP/1.1 400')), { kind: 'fail', failure: { kind: 'not-socks5', version: 0x48 } });
  assert.deepEqual(new SocksHandshake(undefined).push(Buffer.from([5, 0xff])), { kind: 'fail', failure: { kind: 'no-method' } });
  assert.deepEqual(new SocksHandshake(undefined).push(Buffer.from([5, 2])), { kind: 'fail', failure: { kind: 'no-method' } }, 'no credentials to give');
  assert.deepEqual(feed(new SocksHandshake(AUTH), [5, 2, 1, 1]).at(-1), { kind: 'fail', failure: { kind: 'auth-refused' } });
});
