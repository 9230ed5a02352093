import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { TorControl, TorControlError, parseCircuitStatus, parseStreamStatus, type ControlReply } from '../src/index.js';

test('parses stream-status and circuit-status lines', () => {
  assert.deepEqual(parseStreamStatus('12 SUCCEEDED 7 127.0.0.1:4000\n13 NEW 0 echo.test:80\n'), [
    { id: '12', status: 'SUCCEEDED', circuitId: '7', target: '127.0.0.1:4000' },
    { id: '13', status: 'NEW', circuitId: '0', target: 'echo.test:80' },
  ]);
  const [c, d] = parseCircuitStatus(
    '7 BUILT $AAAA~auth0,$BBBB~auth1,$CCCC~auth2 BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL SOCKS_USERNAME="flow 1" TIME_CREATED=2026-01-01T00:00:00.000000\n' +
      '8 LAUNCHED BUILD_FLAGS=NEED_CAPACITY PURPOSE=CONFLUX_UNLINKED\n',
  );
  assert.deepEqual(c!.path, ['$AAAA~auth0', '$BBBB~auth1', '$CCCC~auth2']);
  assert.equal(c!.purpose, 'GENERAL');
  assert.equal(c!.socksUsername, 'flow 1');
  assert.deepEqual(d!.path, []);
  assert.equal(d!.status, 'LAUNCHED');
  assert.deepEqual(parseStreamStatus(''), []);
});

/** A scripted fake control port: answers each command line with the mapped reply text. */
async function fakeTor(replies: Record<string, string>): Promise<{ port: number; close(): void; push(text: string): void }> {
  const conns: Socket[] = [];
  const server = createServer((s) => {
    conns.push(s);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        s.write(replies[line] ?? '510 Unrecognized command\r\n');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    push: (text) => conns.forEach((c) => c.write(text)),
    close: () => {
      conns.forEach((c) => c.destroy());
      server.close();
    },
  };
}

test('control client: auth, single-line and data-block GETINFO, errors, events', async (t) => {
  const tor = await fakeTor({
    'AUTHENTICATE ""': '250 OK\r\n',
    'GETINFO status/bootstrap-phase': '250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"\r\n250 OK\r\n',
    'GETINFO stream-status': '250+stream-status=\r\n5 SUCCEEDED 3 127.0.0.1:1234\r\n..dotted\r\n.\r\n250 OK\r\n',
    'GETINFO circuit-status': '250-circuit-status=\r\n250 OK\r\n',
    'SETEVENTS STREAM': '250 OK\r\n',
  });
  t.after(() => tor.close());
  const control = await TorControl.connect(tor.port);
  t.after(() => control.close());
  assert.equal(await control.bootstrapProgress(), 100);
  const [bootstrap, streams, circuits] = await Promise.all([control.bootstrapProgress(), control.getInfo('stream-status'), control.circuits()]);
  assert.equal(bootstrap, 100);
  assert.equal(streams, '5 SUCCEEDED 3 127.0.0.1:1234\n.dotted');
  assert.deepEqual(circuits, []);
  await assert.rejects(control.command('BOGUS'), (err: unknown) => err instanceof TorControlError && err.code === 510);
  const events: ControlReply[] = [];
  await control.onEvents(['STREAM'], (e) => events.push(e));
  tor.push('650 STREAM 5 CLOSED 3 127.0.0.1:1234 REASON=DONE\r\n');
  while (events.length === 0) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(events[0], { code: 650, lines: ['STREAM 5 CLOSED 3 127.0.0.1:1234 REASON=DONE'] });
});

test('control client rejects pending commands when tor goes away', async () => {
  const tor = await fakeTor({ 'AUTHENTICATE ""': '250 OK\r\n', 'GETINFO version-never-answered-xyz': '' });
  const control = await TorControl.connect(tor.port);
  const pending = control.command('GETINFO version-never-answered-xyz');
  tor.close();
  await assert.rejects(pending, /connection closed/);
  control.close();
});
