// The shim against independent parts: coturn `turnserver` (REST secret, TCP listener) behind
// Debian `microsocks`, driven by coturn's `turnutils_uclient` through `turnutils_peer`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ProcessGroup,
  countClientConnections,
  countServerConnections,
  runUclient,
  sleep,
  startCoturn,
  startMicrosocks,
  startTurnutilsPeer,
  tcpEntries,
  waitFor,
  type Coturn,
} from '@onionturn/testkit';
import { createConnection } from 'node:net';
import { once } from 'node:events';
import { AttributeType, MessageBuilder, MessageClass, Method, decodeMessage, readAddressAttribute } from '@onionturn/protocol';
import { Shim, parseUpstream, type UpstreamServer } from '../src/index.js';
import { captureLogger, messages } from './helpers.js';

const SECRET = 'interop-secret-1';

/** ESTABLISHED connections at the server side of `port` (closing ones of earlier flows left out). */
function established(port: number): number {
  return tcpEntries().filter((e) => e.localPort === port && e.state === 'ESTABLISHED').length;
}

function server(text: string): UpstreamServer {
  const r = parseUpstream(text);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

describe('shim pass-through via microsocks to coturn', () => {
  const group = new ProcessGroup();
  let coturn: Coturn;
  let peerPort: number;
  let socksPort: number;
  let shim: Shim;
  const log = captureLogger();

  before(async () => {
    coturn = await startCoturn(group, { secrets: [SECRET] }); // verbose: its session lines go into failure messages
    peerPort = (await startTurnutilsPeer(group)).port;
    socksPort = (await startMicrosocks(group)).port;
    shim = new Shim({
      listen: { host: '127.0.0.1', port: 0 },
      servers: [server(`tcp://127.0.0.1:${coturn.port}`)],
      socks: { host: '127.0.0.1', port: socksPort },
      logger: log.logger,
      // App ports in the flow lines: when a run fails, which app socket rode which flow.
      detail: true,
      // uclient's 20 clients open 40 flows at once, beyond the default burst of new flows (that
      // limit has its own test in shim-faults).
      newFlowRate: { perSecond: 0, burst: 0 },
      tickMs: 200,
    });
    await shim.start();
  });

  after(async () => {
    await shim?.stop();
    await group.stopAll();
  });

  /** The shim's flow lines so far, for a failure message. */
  const flowLog = (): string =>
    log.lines
      .filter((l) => /^flow /.test(l.message))
      .map((l) => JSON.stringify(l))
      .join('\n');

  test('uclient over UDP allocates, binds channels and relays with no loss', async () => {
    const r = await runUclient(group, {
      server: { host: '127.0.0.1', port: shim.address.port },
      peer: { host: '127.0.0.1', port: peerPort },
      noRtcp: true,
      tcp: false,
      secret: SECRET,
      messages: 50,
      clients: 2,
      intervalMs: 10,
    });
    // This run once failed (1 in about 10 CI runs) with coturn's 400 "You cannot use the same
    // channel number with different peer" for both clients; cause not found yet. The flow lines
    // and coturn's log say which app socket rode which upstream connection if it comes back.
    const context = `${r.output.slice(-1500)}\n--- shim flows:\n${flowLog()}\n--- coturn:\n${coturn.process.output().slice(-3000)}`;
    assert.equal(r.sent, 100, context);
    assert.equal(r.received, 100, context);
    assert.equal(r.lostPackets, 0, r.output.slice(-800));
    assert.equal(shim.stats.flowsOpened >= 2, true);
    assert.equal(shim.stats.upstreamFailures, 0, messages(log.lines));
    // The delay extension was offered (a trailer after the integrity, which coturn ignores) and
    // not echoed: no reports go to a server that does not speak it.
    const df = shim.stats.delayFeedback;
    assert.deepEqual([df.negotiated, df.reportsSent, df.reportsReceived], [0, 0, 0], 'no delay extension with coturn');
    // microsocks without -u/-P picks method NONE: isolation is lost, which is said once, not per flow.
    const ignored = log.lines.filter((l) => /chose no authentication although we offered username\/password: stream isolation is off/.test(l.message));
    assert.equal(ignored.length, 1, messages(log.lines));
    assert.equal(ignored[0]?.level, 'warn');
  });

  test("a Binding (what a web page's stun:127.0.0.1 sends) is answered by the shim with the app's address: no flow, no Tor stream", async () => {
    const { runStunclient } = await import('@onionturn/testkit');
    const opened = shim.stats.flowsOpened;
    const sockets = countClientConnections(socksPort);
    const r = await runStunclient(group, { host: '127.0.0.1', port: shim.address.port });
    assert.equal(r.exitCode, 0, r.output);
    assert.equal(r.reflexive?.address, '127.0.0.1', 'the app address, not the exit');
    assert.equal(shim.stats.flowsOpened, opened, 'no flow');
    assert.ok(shim.stats.bindingsAnswered >= 1);
    // At most as many: an earlier test's streams may still be closing (FIN_WAIT) and drop out.
    assert.ok(countClientConnections(socksPort) <= sockets, 'no SOCKS connection');
  });

  test("a Binding over TCP (a page's turn:127.0.0.1?transport=tcp probe) is answered by the shim: no Tor stream", async () => {
    const opened = log.lines.filter((l) => /^flow open/.test(l.message)).length;
    const sockets = countClientConnections(socksPort);
    const sock = createConnection({ host: '127.0.0.1', port: shim.address.port });
    try {
      await once(sock, 'connect');
      const binding = new MessageBuilder(Method.Binding, MessageClass.Request).build({ fingerprint: true });
      sock.write(binding);
      const [chunk] = (await once(sock, 'data')) as [Buffer];
      const r = decodeMessage(chunk);
      assert.ok(r.ok, 'a STUN answer');
      assert.equal(r.value.messageClass, MessageClass.SuccessResponse);
      assert.equal(r.value.transactionId.toString('hex'), binding.subarray(8, 20).toString('hex'));
      const mapped = readAddressAttribute(r.value, AttributeType.XorMappedAddress);
      // The app's own connection, not microsocks' connection to coturn.
      assert.deepEqual([mapped?.address, mapped?.port], ['127.0.0.1', sock.localPort]);
      await sleep(300); // a dial, had there been one, would have its SOCKS connection by now
      assert.ok(countClientConnections(socksPort) <= sockets, 'no SOCKS connection');
      assert.equal(log.lines.filter((l) => /^flow open/.test(l.message)).length, opened, 'no Tor stream opened');
      assert.ok(shim.stats.bindingsAnswered >= 1);
    } finally {
      sock.destroy();
    }
  });

  test('uclient over TCP (-t) relays with no loss', async () => {
    const r = await runUclient(group, {
      server: { host: '127.0.0.1', port: shim.address.port },
      peer: { host: '127.0.0.1', port: peerPort },
      noRtcp: true,
      secret: SECRET,
      messages: 50,
      clients: 2,
      intervalMs: 10,
      tcp: true,
    });
    assert.equal(r.sent, 100, r.output.slice(-1500));
    assert.equal(r.received, 100, r.output.slice(-800) + '\n--- coturn:\n' + coturn.process.output().slice(-3000));
    assert.equal(r.lostPackets, 0, r.output.slice(-800));
  });

  // turnutils_uclient makes two allocations per client (two UDP sockets), so 20 clients are 40
  // app flows; each must ride its own upstream TCP connection.
  test('20 concurrent UDP clients: every app flow gets its own upstream connection', async () => {
    const before = shim.stats.flowsOpened;
    // Flows of the earlier tests whose allocations are still alive hold their connections. A flow
    // the last test closed may still be open at coturn for a moment (microsocks passes the close
    // on), so wait for the two counts to agree.
    await waitFor('coturn to see one connection per live shim flow', () => established(coturn.port) === shim.activeFlows, 5000);
    const baseline = established(coturn.port);
    let maxAtServer = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        maxAtServer = Math.max(maxAtServer, established(coturn.port));
        await sleep(100);
      }
    })();
    const r = await runUclient(group, {
      server: { host: '127.0.0.1', port: shim.address.port },
      peer: { host: '127.0.0.1', port: peerPort },
      noRtcp: true,
      tcp: false,
      secret: SECRET,
      messages: 20,
      clients: 20,
      intervalMs: 20,
    });
    polling = false;
    await poll;
    assert.equal(r.received, r.sent, r.output.slice(-1500));
    assert.equal(r.sent, 400);
    assert.equal(shim.stats.flowsOpened - before, 40);
    // At least one connection per flow at once (40 flows sharing fewer would show less). Other
    // engineers' loads on this machine can add a stray entry, so not an exact count.
    assert.equal(maxAtServer - baseline >= 40, true, `coturn saw ${maxAtServer} TCP connections at once (${baseline} before)`);
    assert.equal(log.lines.filter((l) => /stream isolation is off/.test(l.message)).length, 1, 'still said only once');
  });

  test('released allocations close their flows; stopping leaves no socket behind', async () => {
    // uclient releases (Refresh lifetime 0) one allocation per client; the shim closes those
    // flows at once. The others stay until idle, as their allocations live on at coturn.
    const released = log.lines.filter((l) => l.message === 'flow closed: allocation released (Refresh with lifetime 0)').length;
    assert.equal(released >= 22, true, `only ${released} flows closed on Refresh 0`);
    assert.equal(shim.activeFlows, shim.stats.flowsOpened - shim.stats.flowsClosed);
    await shim.stop();
    await waitFor('no shim->SOCKS sockets', () => countClientConnections(socksPort) === 0, 5000);
    await waitFor('no connections at coturn', () => countServerConnections(coturn.port) === 0, 5000);
    assert.equal(shim.activeFlows, 0);
  });
});
