// The coturn helpers themselves: a real turnserver, uclient and peer on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessGroup, alive, runUclient, startCoturn, startTurnutilsPeer } from '../src/index.js';

test('startCoturn + startTurnutilsPeer + runUclient relay over TURN/TCP with a REST secret', async (t) => {
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const [coturn, peer] = await Promise.all([startCoturn(group, { secrets: ['testkit-secret'] }), startTurnutilsPeer(group)]);
  const ok = await runUclient(group, { server: coturn, peer, secret: 'testkit-secret' });
  assert.equal(ok.exitCode, 0, ok.output.slice(-2000));
  assert.ok(ok.sent !== undefined && ok.sent > 0 && ok.received === ok.sent, `sent ${ok.sent}, received ${ok.received}`);
  const refused = await runUclient(group, { server: coturn, peer, secret: 'wrong-secret' });
  assert.notEqual(refused.exitCode, 0);
  assert.ok(refused.allocationFailed);
  assert.match(coturn.log(), /error 401: Unauthorized/);
  const pids = group.pids;
  await group.stopAll();
  for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} still alive`);
});
