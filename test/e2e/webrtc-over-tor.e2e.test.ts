// The proof that the bridge works: real Chromium peers make relay-only WebRTC calls whose every
// packet goes app -> onionturn client -> tor client -> Tor relays -> exit (or onion service) ->
// onionturn server -> UDP -> the other peer's allocation. Setup times and RTTs are printed, not
// asserted.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { CallBrowser, median, metricSum, startBridge, type Bridge, type BridgeOptions, type CallResult } from '@onionturn/testkit';

async function bridgeFor(t: TestContext, options: BridgeOptions = {}): Promise<Bridge> {
  const bridge = await startBridge(options);
  t.after(() => bridge.stop());
  return bridge;
}

async function browserFor(t: TestContext): Promise<CallBrowser> {
  const browser = await CallBrowser.start();
  t.after(() => browser.close());
  return browser;
}

function assertRelayCall(r: CallResult, transport: 'udp' | 'tcp', shimPort: number): void {
  assert.equal(r.error, undefined, `call failed: ${r.error}; ICE errors ${JSON.stringify(r.candidateErrors)}`);
  assert.equal(r.echoed, 10, 'every data-channel message came back');
  assert.ok(r.pairs.length >= 2, 'both peers report a selected pair');
  for (const p of r.pairs) {
    assert.equal(p.localType, 'relay');
    assert.equal(p.remoteType, 'relay');
    assert.equal(p.relayProtocol, transport);
    assert.equal(p.url, `turn:127.0.0.1:${shimPort}?transport=${transport}`);
  }
}

function report(name: string, r: CallResult): void {
  console.log(`${name}: call setup ${r.setupMs.toFixed(0)} ms, data-channel RTT median ${median(r.rttMs).toFixed(1)} ms`);
}

test('exit path: TURN/UDP and TURN/TCP from Chromium through the shim, Tor and the server', async (t) => {
  const bridge = await bridgeFor(t);
  const browser = await browserFor(t);
  const control = await bridge.tor.control();
  t.after(() => control.close());
  const streamTargets: string[] = [];
  await control.onEvents(['STREAM'], (ev) => {
    for (const line of ev.lines) {
      const m = /^STREAM \d+ (?:NEW|SUCCEEDED) \d+ (\S+)/.exec(line);
      if (m?.[1]) streamTargets.push(m[1]);
    }
  });
  const before = await bridge.metrics();
  for (const transport of ['udp', 'tcp'] as const) {
    const cred = await bridge.credentials();
    const r = await browser.call({
      iceServers: [{ urls: `turn:127.0.0.1:${bridge.shimPort}?transport=${transport}`, username: cred.username, credential: cred.password }],
      media: true,
    });
    assertRelayCall(r, transport, bridge.shimPort);
    assert.ok(r.framesDecoded.video > 0, 'fake video frames were decoded on the far side');
    assert.ok(r.framesDecoded.audio > 0, 'audio packets arrived on the far side');
    report(`exit path, TURN/${transport}`, r);
  }
  const after = await bridge.metrics();
  assert.ok(metricSum(after, 'onionturn_allocations_created_total') - metricSum(before, 'onionturn_allocations_created_total') >= 4, 'the server counted the allocations');
  assert.ok(metricSum(after, 'onionturn_relayed_bytes_total') > metricSum(before, 'onionturn_relayed_bytes_total') + 100_000, 'the server relayed the media');
  const toServer = streamTargets.filter((s) => s === `127.0.0.1:${bridge.serverPort}`);
  assert.ok(toServer.length >= 4, `tor carried the shim's streams to the server (saw ${streamTargets.join(', ')})`);
});
