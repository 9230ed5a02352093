// The shim's status page in a real Chromium on the private Tor network: it shows tor and the
// server, its Test call button makes a relay-only call through shim -> Tor -> server and back and
// shows the result; the request guard holds against real HTTP requests; with tor stopped the page
// still answers and says tor is down. A screenshot is kept in artifacts/ (gitignored).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { CallBrowser, repoRoot, startBridge, type Bridge, type ShimHandle } from '@onionturn/testkit';

const ARTIFACTS = join(repoRoot() ?? process.cwd(), 'artifacts');

/** One raw HTTP request (fetch() would not let a test set Host). */
function raw(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A snippet of docs/app-developers.md, by its `<!-- snippet: NAME -->` marker. */
function guideSnippet(name: string): string {
  const doc = readFileSync(join(repoRoot() ?? process.cwd(), 'docs', 'app-developers.md'), 'utf8');
  const m = new RegExp(`<!-- snippet: ${name} -->\\n\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(doc);
  if (!m?.[1]) throw new Error(`docs/app-developers.md has no snippet '${name}'`);
  return m[1];
}

/** Runs in the page: two peers made by the guide's torPeerConnection() call each other. */
const GUIDE_CALL = String.raw`async (shim, credentials) => {
  const a = torPeerConnection(shim, credentials), b = torPeerConnection(shim, credentials);
  const types = [];
  for (const [x, y] of [[a, b], [b, a]]) x.onicecandidate = (e) => { if (e.candidate) { types.push(e.candidate.type); y.addIceCandidate(e.candidate); } };
  b.ondatachannel = (e) => { e.channel.onmessage = (m) => e.channel.send(m.data); };
  const dc = a.createDataChannel('guide');
  const opened = new Promise((resolve, reject) => { dc.onopen = resolve; setTimeout(() => reject(new Error('no connection in 60 s')), 60000); });
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  await opened;
  const echo = await new Promise((resolve) => { dc.onmessage = (m) => resolve(m.data); dc.send('hello through Tor'); });
  const config = a.getConfiguration();
  a.close(); b.close();
  return { echo, types, policy: config.iceTransportPolicy };
}`;

describe('status page', () => {
  let bridge: Bridge;
  let browser: CallBrowser;
  let shim: ShimHandle;
  let host: string;
  before(async () => {
    bridge = await startBridge();
    browser = await CallBrowser.start();
    // Local-credential mode: the page has the credentials for its test call.
    shim = await bridge.addShim(bridge.server, { localCredentials: { user: 'alice', password: 'local-secret' } });
    host = `127.0.0.1:${shim.statusPort}`;
  });
  after(async () => {
    await browser?.close();
    await bridge?.stop();
  });

  test('Chromium: the page shows tor up and the server; Test call connects relay/relay through the shim and Tor', async () => {
    const page = await browser.open(`http://${host}/`);
    try {
      await page.locator('#tor-state', { hasText: 'Tor is up' }).waitFor({ timeout: 15_000 });
      assert.match(await page.locator('#servers').innerText(), /tcp:\/\/127\.0\.0\.1:\d+/);
      assert.match(await page.locator('#ice').innerText(), /"username": "alice"/);
      await page.click('#test');
      const result = page.locator('#test-result:not([data-state="idle"]):not([data-state="running"])');
      await result.waitFor({ timeout: 90_000 });
      const text = await result.innerText();
      console.log(`test call on the status page: ${text.replace(/\n/g, ' | ')}`);
      assert.equal(await result.getAttribute('data-state'), 'ok', text);
      assert.match(text, /setup \d+ ms/);
      assert.match(text, /RTT median \d+ ms/);
      assert.match(text, /candidate pair relay\/(udp|tcp) ↔ relay\/udp via turn:127\.0\.0\.1:\d+/);
      // The flows and bytes of the call show in the table and the graph after a poll.
      await page.waitForFunction(`/TURN over UDP\\s+\\d+\\s+[1-9]/.test(document.getElementById('flows').innerText)`, undefined, { timeout: 5000 });
      await page.waitForTimeout(2500);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.setViewportSize({ width: 1200, height: 820 });
      await page.screenshot({ path: join(ARTIFACTS, 'status-page.png'), fullPage: true });
      console.log(`screenshot: ${join(ARTIFACTS, 'status-page.png')}`);
    } finally {
      await page.close();
    }
  });

  /** The guide's browser snippet in a fresh page of `b`: a call with itself through the pass-through shim and Tor. */
  async function guideCall(b: CallBrowser): Promise<{ echo: string; types: string[]; policy: string }> {
    const cred = await bridge.credentials();
    const page = await b.open(b.url);
    try {
      await page.addScriptTag({ content: guideSnippet('browser') });
      return (await page.evaluate(`(${GUIDE_CALL})(${JSON.stringify(`127.0.0.1:${bridge.shim.port}`)}, ${JSON.stringify(cred)})`)) as {
        echo: string;
        types: string[];
        policy: string;
      };
    } finally {
      await page.close();
    }
  }

  test('the browser snippet of docs/app-developers.md calls through the pass-through shim and Tor, relay candidates only', async () => {
    const r = await guideCall(browser);
    assert.equal(r.echo, 'hello through Tor');
    assert.equal(r.policy, 'relay');
    assert.ok(r.types.length > 0 && r.types.every((t) => t === 'relay'), `only relay candidates were gathered: ${r.types.join(', ')}`);
  });

  /** Runs in the page: the candidate types one RTCPeerConnection gathers when its code forgets iceTransportPolicy. */
  const GATHER_WITHOUT_RELAY_POLICY = String.raw`async (shim, credentials) => {
    const pc = new RTCPeerConnection({ iceServers: [{ urls: ['turn:' + shim + '?transport=udp', 'turn:' + shim + '?transport=tcp'], username: credentials.username, credential: credentials.password }] });
    const types = [];
    const done = new Promise((resolve) => { pc.onicecandidate = (e) => { if (e.candidate) types.push(e.candidate.type); else resolve(); }; setTimeout(resolve, 20000); });
    pc.createDataChannel('gather');
    await pc.setLocalDescription(await pc.createOffer());
    await done;
    pc.close();
    return types;
  }`;

  async function gatherWithoutPolicy(b: CallBrowser): Promise<string[]> {
    const cred = await bridge.credentials();
    const page = await b.open(b.url);
    try {
      return (await page.evaluate(`(${GATHER_WITHOUT_RELAY_POLICY})(${JSON.stringify(`127.0.0.1:${bridge.shim.port}`)}, ${JSON.stringify(cred)})`)) as string[];
    } finally {
      await page.close();
    }
  }

  test("the Electron advice of docs/app-developers.md: iceTransportPolicy 'relay' is what keeps host candidates out; Chromium's WebRTC IP handling policy alone does not", async () => {
    // Electron's setWebRTCIPHandlingPolicy('disable_non_proxied_udp') is this Chromium switch.
    const electronLike = await CallBrowser.start({ extraArgs: ['--force-webrtc-ip-handling-policy=disable_non_proxied_udp'] });
    try {
      const guarded = await gatherWithoutPolicy(electronLike);
      console.log(`candidates without iceTransportPolicy under the IP handling policy: ${guarded.join(',')}`);
      // What the guide warns about: the switch is no substitute for the relay policy.
      assert.ok(guarded.includes('host'), `host candidates without the relay policy, despite the switch: ${guarded.join(', ')}`);
      const r = await guideCall(electronLike);
      assert.equal(r.echo, 'hello through Tor');
      assert.ok(r.types.length > 0 && r.types.every((t) => t === 'relay'), `with the guide's snippet only relay candidates: ${r.types.join(', ')}`);
    } finally {
      await electronLike.close();
    }
  });

  test('pass-through mode: the page says where credentials come from; Test call with a pasted credential connects, a wrong one fails at TURN auth', async () => {
    const page = await browser.open(`http://127.0.0.1:${bridge.shim.statusPort}/`);
    try {
      assert.match(await page.locator('#ice-box').innerText(), /Pass-through mode: the app brings its own TURN credentials/);
      const cred = await bridge.credentials();
      const run = async (password: string): Promise<{ state: string | null; text: string }> => {
        await page.fill('#user', cred.username);
        await page.fill('#pass', password);
        await page.click('#test');
        const result = page.locator('#test-result[data-state="ok"], #test-result[data-state="failed"]');
        await result.waitFor({ timeout: 90_000 });
        const out = { state: await result.getAttribute('data-state'), text: await result.innerText() };
        await page.evaluate(`document.getElementById('test-result').dataset.state = 'idle'`);
        return out;
      };
      const good = await run(cred.password);
      assert.equal(good.state, 'ok', good.text);
      const bad = await run(`${cred.password}x`);
      console.log(`pass-through test call with a wrong credential: ${bad.text.replace(/\n/g, ' | ')}`);
      assert.equal(bad.state, 'failed');
      // The shim's own diagnosis (its counters), not the browser's ICE error code.
      assert.match(bad.text, /failed at: turn-auth\s+TURN authentication: the credentials were refused/);
    } finally {
      await page.close();
    }
  });

  test('/metrics: Prometheus text with flows by kind and bytes, no per-flow labels', async () => {
    const r = await raw(shim.statusPort, 'GET', '/metrics', { host });
    assert.equal(r.status, 200);
    assert.match(r.body, /^onionturn_client_flows_opened_total\{kind="turn-(udp|tcp)"\} [1-9]/m);
    assert.match(r.body, /^onionturn_client_bytes_total\{kind="turn-udp",direction="to_server"\} [1-9]/m);
    assert.match(r.body, /^onionturn_client_tor_up 1$/m);
    assert.doesNotMatch(r.body, /alice|flow="|peer="|address="/);
  });

  test('a foreign Host header gets 421; no answer carries CORS headers', async () => {
    for (const path of ['/', '/api/status', '/metrics']) {
      const r = await raw(shim.statusPort, 'GET', path, { host: `rebind.example:${shim.statusPort}` });
      assert.equal(r.status, 421, path);
      assert.doesNotMatch(r.body, /alice|local-secret/);
    }
    const ok = await raw(shim.statusPort, 'GET', '/', { host });
    assert.equal(ok.status, 200);
    assert.ok(!Object.keys(ok.headers).some((h) => h.startsWith('access-control-')));
    assert.match(String(ok.headers['content-security-policy']), /default-src 'self'/);
  });

  test('the test call cannot be started without the page token, nor cross-origin with it', async () => {
    const page = await raw(shim.statusPort, 'GET', '/', { host });
    const token = /name="onionturn-token" content="([^"]+)"/.exec(page.body)?.[1] ?? '';
    assert.ok(token.length > 20);
    const none = await raw(shim.statusPort, 'POST', '/api/test-call', { host, origin: `http://${host}` });
    assert.equal(none.status, 403);
    assert.doesNotMatch(none.body, /local-secret/);
    const wrong = await raw(shim.statusPort, 'POST', '/api/test-call', { host, origin: `http://${host}`, 'x-onionturn-token': `${token}x` });
    assert.equal(wrong.status, 403);
    const cross = await raw(shim.statusPort, 'POST', '/api/test-call', {
      host,
      origin: 'https://evil.example',
      'sec-fetch-site': 'cross-site',
      'x-onionturn-token': token,
    });
    assert.equal(cross.status, 403);
    const good = await raw(shim.statusPort, 'POST', '/api/test-call', {
      host,
      origin: `http://${host}`,
      'sec-fetch-site': 'same-origin',
      'x-onionturn-token': token,
    });
    assert.equal(good.status, 200);
    assert.match(good.body, /local-secret/, 'with the token the page gets its test credentials');
  });

  test('a page on another origin in Chromium cannot read the status or start the test call', async () => {
    const other = await browser.open(browser.url);
    try {
      const r = (await other.evaluate(`(async () => {
        const out = {};
        try { await fetch('http://${host}/api/status'); out.read = 'read'; } catch (e) { out.read = 'blocked'; }
        try { const x = await fetch('http://${host}/api/test-call', { method: 'POST', headers: { 'x-onionturn-token': 'guess' } }); out.post = x.status; } catch (e) { out.post = 'blocked'; }
        return out;
      })()`)) as { read: string; post: string | number };
      assert.deepEqual(r, { read: 'blocked', post: 'blocked' });
    } finally {
      await other.close();
    }
  });

  test('with tor stopped the page still answers and says tor is down', async () => {
    await bridge.tor.stop();
    const page = await browser.open(`http://${host}/`);
    try {
      await page.locator('#tor-state', { hasText: 'tor is down' }).waitFor({ timeout: 15_000 });
      assert.match(await page.locator('#servers').innerText(), /tcp:\/\/127\.0\.0\.1/);
      await page.click('#test');
      const result = page.locator('#test-result[data-state="failed"]');
      await result.waitFor({ timeout: 90_000 });
      const text = await result.innerText();
      console.log(`test call with tor stopped: ${text.replace(/\n/g, ' | ')}`);
      assert.match(text, /failed at: socks/);
    } finally {
      await page.close();
    }
  });
});
