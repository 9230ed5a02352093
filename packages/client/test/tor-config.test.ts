// The managed tor's torrc and its log lines, without tor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { managedTorrc, parseTorLine } from '../src/tor-config.js';

test('embedded tor: torrc with an auto SocksPort and the extra lines; log lines understood', () => {
  const rc = managedTorrc({ dataDir: '/tmp/onionturn-tor-x', owningPid: 42, extra: 'TestingTorNetwork 1\n\n' });
  assert.match(rc, /^SocksPort 127\.0\.0\.1:auto$/m);
  assert.match(rc, /^__OwningControllerProcess 42$/m);
  assert.ok(rc.endsWith('TestingTorNetwork 1\n'));
  assert.throws(() => managedTorrc({ dataDir: '/tmp/with space', owningPid: 1 }));
  assert.deepEqual(parseTorLine('Nov 22 01:47:55.228 [notice] Opened Socks listener connection (ready) on 127.0.0.1:44943'), {
    kind: 'socks',
    host: '127.0.0.1',
    port: 44943,
  });
  assert.deepEqual(parseTorLine('Nov 22 01:47:57.000 [notice] Bootstrapped 5% (conn): Connecting to a relay'), {
    kind: 'bootstrap',
    percent: 5,
    summary: 'Connecting to a relay',
  });
  assert.deepEqual(parseTorLine('Nov 22 [err] Reading config failed'), { kind: 'problem', level: 'err', text: 'Reading config failed' });
  assert.equal(parseTorLine('Nov 22 [notice] Parsing GEOIP IPv4 file'), undefined);
});
