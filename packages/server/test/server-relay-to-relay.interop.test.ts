// Two users of one server call each other, as a user would set it up: the server has a public
// address (11.0.0.1 on the loopback of a network namespace of the test's own, so nothing leaves
// it) and no --allow-loopback-peers. coturn's turnutils_uclient -y (client to client: each
// allocation sends to the other's relay address) and a relay-only Chromium call both relay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallBrowser, NetNamespace, ProcessGroup, runUclient, startServer } from '@onionturn/testkit';
import { assertEchoed } from './uclient-asserts.js';

const PUBLIC = '11.0.0.1';

test('relay to relay on one server with a public address: uclient -y over TCP and UDP, channels and Send; Chromium', async (t) => {
  const ns = NetNamespace.create([PUBLIC]);
  const group = new ProcessGroup();
  t.after(async () => {
    await group.stopAll();
    ns.delete();
  });
  const server = await startServer(
    group,
    ['--user', 'alice:wonderland', '--max-allocations-per-user', '50'],
    {},
    {
      listen: [`tcp://${PUBLIC}:3478`, `udp://${PUBLIC}:3478`],
      netns: ns,
    },
  );
  for (const tcp of [true, false]) {
    const s = { host: PUBLIC, port: tcp ? server.tcp : server.udp };
    const name = tcp ? 'TCP' : 'UDP';
    const base = { server: s, username: 'alice', password: 'wonderland', tcp, netns: ns, messages: 20 } as const;
    await t.test(`${name} channels, 2 clients`, async () => {
      assertEchoed(await runUclient(group, { ...base, clients: 2, extraArgs: ['-y', '-c'] }), `${name} -y channels`, 40);
    });
    await t.test(`${name} channels with RTCP pairs, 4 clients`, async () => {
      // uclient counts the RTP messages only.
      assertEchoed(await runUclient(group, { ...base, clients: 4, extraArgs: ['-y'] }), `${name} -y RTCP`, 80);
    });
  }
  await t.test('Send indications (address filtering: uclient -y sends before the other side has)', async () => {
    // Under the default address-and-port filtering a Send indication opens the filter only once
    // the receiver has sent to that ip:port (a ChannelBind opens it too); uclient -y -s has one
    // side send all its messages first, so this run uses address filtering, as coturn does.
    const other = await startServer(
      group,
      ['--user', 'alice:wonderland', '--filtering', 'address'],
      {},
      {
        listen: [`tcp://${PUBLIC}:3479`, `udp://${PUBLIC}:3479`],
        netns: ns,
      },
    );
    for (const tcp of [true, false]) {
      const s = { host: PUBLIC, port: tcp ? other.tcp : other.udp };
      const run = await runUclient(group, {
        server: s,
        username: 'alice',
        password: 'wonderland',
        tcp,
        netns: ns,
        messages: 20,
        clients: 2,
        extraArgs: ['-y', '-c', '-s'],
      });
      assertEchoed(run, `${tcp ? 'TCP' : 'UDP'} -y -s`, 40);
    }
  });
  await t.test('other ports of the own address stay denied (a loopback-style peer gets 403)', async () => {
    // The server's TCP listener port on its own address: a host service, not a relay.
    const run = await runUclient(group, {
      server: { host: PUBLIC, port: server.tcp },
      username: 'alice',
      password: 'wonderland',
      netns: ns,
      peer: { host: PUBLIC, port: server.tcp },
      messages: 3,
      extraArgs: ['-c'],
    });
    assert.match(run.output, /error 403 \(Forbidden\)/, run.output.slice(-800));
    assert.equal(run.received ?? 0, 0);
  });
  await t.test('Chromium: a relay-only call whose two peers share the server', async () => {
    // Chromium sees one network, lo, by its first address (127.0.0.1), and drops a TURN/TCP
    // connection whose source address is another (error 701): connections to 11.0.0.1 take
    // 127.0.0.1 as their source, as they would from a client on another machine.
    ns.run('ip', ['route', 'replace', 'local', PUBLIC, 'dev', 'lo', 'table', 'local', 'src', '127.0.0.1']);
    const browser = await CallBrowser.start({ netns: ns });
    try {
      for (const transport of ['udp', 'tcp']) {
        const r = await browser.call({
          iceServers: [
            { urls: `turn:${PUBLIC}:${transport === 'udp' ? server.udp : server.tcp}?transport=${transport}`, username: 'alice', credential: 'wonderland' },
          ],
          messages: 10,
        });
        assert.equal(r.error, undefined, `${transport}: ${r.error}; ICE errors ${JSON.stringify(r.candidateErrors)}`);
        assert.equal(r.echoed, 10);
        for (const p of r.pairs) {
          assert.equal(p.localType, 'relay');
          assert.equal(p.remoteType, 'relay');
          assert.equal(p.localAddress, PUBLIC);
        }
      }
    } finally {
      await browser.close();
    }
  });
});
