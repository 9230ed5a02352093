// The proof that the bridge works: real Chromium peers make relay-only WebRTC calls whose every
// packet goes app -> onionturn client -> tor client -> Tor relays -> exit (or onion service) ->
// onionturn server -> UDP -> the other peer's allocation. Setup times and RTTs are printed, not
// asserted.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CallBrowser, median, metricSum, startBridge, type Bridge, type CallResult, type ShimHandle, type TorControl } from '@onionturn/testkit';

function assertRelayCall(r: CallResult, transport: 'udp' | 'tcp', shim: ShimHandle): void {
  assert.equal(r.error, undefined, `call failed: ${r.error}; ICE errors ${JSON.stringify(r.candidateErrors)}`);
  assert.equal(r.echoed, 10, 'every data-channel message came back');
  assert.ok(r.pairs.length >= 2, 'both peers report a selected pair');
  for (const p of r.pairs) {
    assert.equal(p.localType, 'relay');
    assert.equal(p.remoteType, 'relay');
    assert.equal(p.relayProtocol, transport);
    assert.equal(p.url, `turn:127.0.0.1:${shim.port}?transport=${transport}`);
  }
}

function report(name: string, r: CallResult): void {
  console.log(`${name}: call setup ${r.setupMs.toFixed(0)} ms, data-channel RTT median ${median(r.rttMs).toFixed(1)} ms`);
}

/** Tor STREAM events: which circuit carried each stream, by target. */
async function watchStreams(control: TorControl): Promise<{ target: string; circuit: string }[]> {
  const seen: { target: string; circuit: string }[] = [];
  await control.onEvents(['STREAM'], (ev) => {
    for (const line of ev.lines) {
      const m = /^STREAM \d+ SUCCEEDED (\d+) (\S+)/.exec(line);
      if (m?.[1] && m[2]) seen.push({ circuit: m[1], target: m[2] });
    }
  });
  return seen;
}

describe('exit path: the server reached through a Tor exit', () => {
  let bridge: Bridge;
  let browser: CallBrowser;
  let control: TorControl;
  let streams: { target: string; circuit: string }[];
  before(async () => {
    bridge = await startBridge();
    browser = await CallBrowser.start();
    control = await bridge.tor.control();
    streams = await watchStreams(control);
  });
  after(async () => {
    control?.close();
    await browser?.close();
    await bridge?.stop();
  });

  test('TURN/UDP from Chromium: data channel, audio and video, relay/relay; metrics and tor streams show it', async () => {
    const before = await bridge.server.metrics();
    const cred = await bridge.credentials();
    const r = await browser.call({
      iceServers: [{ urls: `turn:127.0.0.1:${bridge.shim.port}?transport=udp`, username: cred.username, credential: cred.password }],
      media: true,
    });
    assertRelayCall(r, 'udp', bridge.shim);
    assert.ok(r.framesDecoded.video > 0, 'fake video frames were decoded on the far side');
    assert.ok(r.framesDecoded.audio > 0, 'audio packets arrived on the far side');
    report('exit path, TURN/UDP', r);
    const after = await bridge.server.metrics();
    const allocations = metricSum(after, 'onionturn_allocations_created_total') - metricSum(before, 'onionturn_allocations_created_total');
    const bytes = metricSum(after, 'onionturn_relayed_bytes_total') - metricSum(before, 'onionturn_relayed_bytes_total');
    assert.ok(allocations >= 2, `the server counted the allocations (${allocations})`);
    assert.ok(bytes > 50_000, `the server relayed the media (${bytes} bytes)`);
    console.log(`server metrics: ${allocations} allocations, ${bytes} bytes relayed`);
    const toServer = streams.filter((s) => s.target === `127.0.0.1:${bridge.server.port}`);
    assert.ok(toServer.length >= 2, `tor carried the shim's streams to the server (saw ${JSON.stringify(streams)})`);
  });

  test('TURN/TCP from Chromium: the same call over TCP to the shim', async () => {
    const cred = await bridge.credentials();
    const r = await browser.call({
      iceServers: [{ urls: `turn:127.0.0.1:${bridge.shim.port}?transport=tcp`, username: cred.username, credential: cred.password }],
      media: true,
    });
    assertRelayCall(r, 'tcp', bridge.shim);
    assert.ok(r.framesDecoded.video > 0, 'fake video frames were decoded on the far side');
    report('exit path, TURN/TCP', r);
  });

  test('per-flow isolation: the allocations ride different Tor circuits', () => {
    const toServer = streams.filter((s) => s.target === `127.0.0.1:${bridge.server.port}`);
    const circuits = new Set(toServer.map((s) => s.circuit));
    console.log(`${toServer.length} streams to the server on ${circuits.size} circuits`);
    assert.ok(toServer.length >= 4);
    assert.ok(circuits.size >= 2, `streams to the server shared one circuit: ${JSON.stringify(toServer)}`);
  });

  test("local-credential mode: the page uses the shim's static credentials; the shim fetches upstream ones through Tor", async () => {
    const shim = await bridge.addShim(bridge.server, { localCredentials: { user: 'alice', password: 'local-secret' } });
    const r = await browser.call({
      iceServers: [{ urls: `turn:127.0.0.1:${shim.port}?transport=udp`, username: 'alice', credential: 'local-secret' }],
    });
    assertRelayCall(r, 'udp', shim);
    report('local-credential mode, TURN/UDP', r);
    const viaTor = streams.filter((s) => s.target === `127.0.0.1:${bridge.server.credentialPort}`);
    assert.ok(viaTor.length >= 1, `the upstream credentials were fetched through Tor (streams: ${JSON.stringify(streams)})`);
    const wrong = await browser.call({
      iceServers: [{ urls: `turn:127.0.0.1:${shim.port}?transport=udp`, username: 'alice', credential: 'not-it' }],
      timeoutMs: 6000,
      messages: 1,
    });
    assert.equal(wrong.connected, false);
    assert.ok(
      wrong.candidateErrors.some((e) => e.errorCode === 401),
      `ICE errors: ${JSON.stringify(wrong.candidateErrors)}`,
    );
  });

  test('wrong credentials show in the page as ICE candidate error 401', async () => {
    const cred = await bridge.credentials();
    const r = await browser.call({
      iceServers: [{ urls: `turn:127.0.0.1:${bridge.shim.port}?transport=udp`, username: cred.username, credential: `${cred.password}x` }],
      timeoutMs: 8000,
      messages: 1,
    });
    assert.equal(r.connected, false);
    assert.ok(
      r.candidateErrors.some((e) => e.errorCode === 401),
      `ICE errors: ${JSON.stringify(r.candidateErrors)}`,
    );
  });

  test('a peer on a denied address (loopback, another server, without --allow-loopback-peers) gets no traffic', async () => {
    // Each browser peer on a server of its own: the other's relay address is a loopback address
    // that is no live relay of this server, so the deny list holds.
    const strict = [await bridge.addServer({ allowLoopbackPeers: false }), await bridge.addServer({ allowLoopbackPeers: false })];
    const shims = [await bridge.addShim(strict[0]!), await bridge.addShim(strict[1]!)];
    const cred = await bridge.credentials();
    const ice = (shim: ShimHandle): { urls: string; username: string; credential: string }[] => [
      { urls: `turn:127.0.0.1:${shim.port}?transport=udp`, username: cred.username, credential: cred.password },
    ];
    const r = await browser.call({ iceServers: ice(shims[0]!), iceServersB: ice(shims[1]!), timeoutMs: 8000, messages: 1 });
    assert.equal(r.connected, false, 'no call can be set up when every peer is denied');
    for (const s of strict) {
      const m = await s.metrics();
      assert.ok(metricSum(m, 'onionturn_allocations_created_total') >= 1, 'the browser did allocate');
      assert.ok(metricSum(m, 'onionturn_denied_peers_total') >= 1, 'the peer policy refused the peers');
      assert.equal(metricSum(m, 'onionturn_relayed_packets_total', 'direction="to_peer"'), 0, 'nothing was sent to a denied peer');
    }
  });
});

describe('onion path: the server reached at its .onion address', () => {
  let bridge: Bridge;
  let browser: CallBrowser;
  before(async () => {
    bridge = await startBridge({ onion: true });
    browser = await CallBrowser.start();
  });
  after(async () => {
    await browser?.close();
    await bridge?.stop();
  });

  test('TURN/UDP from Chromium through the onion service', async () => {
    assert.match(bridge.shim.upstream, /^[a-z2-7]{56}\.onion:\d+$/);
    const cred = await bridge.credentials();
    const r = await browser.call({
      iceServers: [{ urls: `turn:127.0.0.1:${bridge.shim.port}?transport=udp`, username: cred.username, credential: cred.password }],
      media: true,
      timeoutMs: 40_000,
    });
    assertRelayCall(r, 'udp', bridge.shim);
    assert.ok(r.framesDecoded.video > 0, 'fake video frames were decoded on the far side');
    report('onion path, TURN/UDP', r);
  });
});
