// The WebRTC harness itself, against an independent TURN server (coturn): a relay-only call
// goes through, media decodes, and a wrong password shows as ICE candidate error 401.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { CallBrowser, ProcessGroup, median, startCoturn } from '../src/index.js';

function restCredential(secret: string): { username: string; credential: string } {
  const username = `${Math.floor(Date.now() / 1000) + 3600}:harness`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}

test('Chromium makes a relay-only call through coturn over TURN/UDP and TURN/TCP', async (t) => {
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  const coturn = await startCoturn(group, { secrets: ['harness-secret'], verbose: false });
  const browser = await CallBrowser.start();
  t.after(() => browser.close());
  const cred = restCredential('harness-secret');
  for (const transport of ['udp', 'tcp'] as const) {
    const r = await browser.call({ iceServers: [{ urls: `turn:${coturn.host}:${coturn.port}?transport=${transport}`, ...cred }], media: transport === 'udp' });
    assert.equal(r.error, undefined);
    assert.equal(r.echoed, 10);
    assert.ok(r.pairs.length >= 2);
    for (const p of r.pairs) {
      assert.equal(p.localType, 'relay');
      assert.equal(p.remoteType, 'relay');
      assert.equal(p.relayProtocol, transport);
    }
    if (transport === 'udp') assert.ok(r.framesDecoded.video > 0, 'video frames decoded');
    console.log(`coturn ${transport}: setup ${r.setupMs.toFixed(0)} ms, data-channel RTT median ${median(r.rttMs).toFixed(2)} ms`);
  }
  const bad = await browser.call({
    iceServers: [{ urls: `turn:${coturn.host}:${coturn.port}?transport=udp`, username: cred.username, credential: 'wrong' }],
    timeoutMs: 4000,
    messages: 1,
  });
  assert.equal(bad.connected, false);
  assert.ok(
    bad.candidateErrors.some((e) => e.errorCode === 401),
    JSON.stringify(bad.candidateErrors),
  );
});
