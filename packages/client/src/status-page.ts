// The status page's three files: HTML (rendered per start: it carries the token and the
// iceServers), CSS and the script (static). No external assets: it works offline. The script is a
// file of its own so the CSP needs no 'unsafe-inline'.

export interface PageValues {
  /** The per-start token the test call needs (guard: TOKEN_HEADER). */
  readonly token: string;
  /** Local-credential mode: the iceServers JSON to paste; pass-through: undefined. */
  readonly iceServersJson: string | undefined;
  /** Pass-through mode: where the app's credentials come from. */
  readonly credentialsNote: string;
  /** turn: URLs of the shim (for the pass-through test call, with the user's credentials). */
  readonly turnUrls: readonly string[];
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function statusPageHtml(v: PageValues): string {
  const ice =
    v.iceServersJson !== undefined
      ? `<pre id="ice">${escapeHtml(v.iceServersJson)}</pre><button id="copy" type="button">Copy</button> <span id="copied"></span>`
      : `<p>Pass-through mode: the app brings its own TURN credentials. ${escapeHtml(v.credentialsNote)}</p>
<pre id="ice">${escapeHtml(JSON.stringify({ iceServers: [{ urls: v.turnUrls, username: '<from your app server>', credential: '<from your app server>' }] }, null, 2))}</pre>
<p>For the test call, paste a credential: <input id="user" placeholder="username" autocomplete="off"> <input id="pass" placeholder="credential" type="password" autocomplete="off"></p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="onionturn-token" content="${escapeHtml(v.token)}">
<meta name="onionturn-turn" content="${escapeHtml(JSON.stringify(v.turnUrls))}">
<title>onionturn client</title>
<link rel="stylesheet" href="/status.css">
<script src="/status.js" defer></script>
</head>
<body>
<header><h1>onionturn client</h1><span id="updated">loading…</span></header>
<main>
<section id="tor-box"><h2>Tor</h2><div id="tor">…</div></section>
<section id="servers-box"><h2>Upstream</h2><div id="servers">…</div></section>
<section id="flows-box"><h2>Flows</h2><div id="flows">…</div>
<svg id="graph" viewBox="0 0 360 90" preserveAspectRatio="none" role="img" aria-label="throughput and drops">
<polyline id="bytes-line" fill="none" stroke="#2b7bb9" stroke-width="1.5" points=""/>
<polyline id="drops-line" fill="none" stroke="#c0392b" stroke-width="1.5" points=""/>
</svg>
<div class="legend"><span class="b">■</span> throughput <span id="bytes-now"></span> · <span class="d">■</span> drops <span id="drops-now"></span> (last 2 minutes)</div>
<div id="drops"></div></section>
<section id="ice-box"><h2>iceServers</h2>${ice}</section>
<section id="test-box"><h2>Test call</h2>
<p>Two peers in this page call each other, relay only, through this shim, Tor and the server.</p>
<button id="test" type="button">Test call</button>
<div id="test-result" data-state="idle"></div></section>
</main>
</body>
</html>
`;
}

export const STATUS_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #f6f6f4; }
header { display: flex; align-items: baseline; gap: 1em; padding: .6em 1.2em; background: #3b2f4a; color: #fff; }
h1 { font-size: 1.2em; margin: 0; }
h2 { font-size: 1em; margin: 0 0 .4em; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 1em; padding: 1em; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .8em 1em; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: .15em .4em; border-bottom: 1px solid #eee; font-variant-numeric: tabular-nums; }
pre { background: #f0f0ee; padding: .5em; overflow: auto; font-size: 12px; }
.ok { color: #1e7a34; font-weight: 600; }
.bad { color: #b02a1b; font-weight: 600; }
.warn { color: #a66a00; font-weight: 600; }
.legend .b { color: #2b7bb9; } .legend .d { color: #c0392b; }
svg { background: #fafafa; border: 1px solid #eee; margin-top: .5em; width: 100%; height: 90px; box-sizing: border-box; }
progress { width: 10em; }
#test-result { margin-top: .6em; }
`;

// Runs in the browser (plain JavaScript; the CSP allows only this file).
export const STATUS_JS = String.raw`
'use strict';
const token = document.querySelector('meta[name="onionturn-token"]').content;
const turnUrls = JSON.parse(document.querySelector('meta[name="onionturn-turn"]').content);
const $ = (id) => document.getElementById(id);
const text = (tag, t, cls) => { const e = document.createElement(tag); e.textContent = t; if (cls) e.className = cls; return e; };
const bytes = (n) => n < 1024 ? n.toFixed(0) + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB';
const ago = (t, now) => t === undefined || t === null ? 'never' : Math.round((now - t) / 1000) + ' s ago';
function table(rows, head) {
  const t = document.createElement('table');
  if (head) { const tr = document.createElement('tr'); for (const h of head) tr.append(text('th', h)); t.append(tr); }
  for (const r of rows) { const tr = document.createElement('tr'); for (const c of r) tr.append(c instanceof Node ? (() => { const td = document.createElement('td'); td.append(c); return td; })() : text('td', String(c))); t.append(tr); }
  return t;
}
function renderTor(tor) {
  const box = $('tor');
  box.replaceChildren();
  const state = tor.up ? text('span', 'Tor is up', 'ok') : tor.verdict === 'unknown' ? text('span', 'checking…', 'warn') : text('span', tor.verdict === 'not-tor' ? 'NOT Tor' : 'tor is down', 'bad');
  state.id = 'tor-state';
  const rows = [['state', state], ['SOCKS port', tor.socks || '(not yet)'], ['is Tor', tor.verdict === 'tor' ? 'yes (answers Tor\'s RESOLVE extension)' : (tor.verdictReason || tor.verdict)]];
  if (tor.managed) {
    const p = document.createElement('progress'); p.max = 100; p.value = tor.bootstrapPercent || 0;
    const span = document.createElement('span'); span.append(p, ' ' + (tor.bootstrapPercent ?? 0) + '% ' + (tor.bootstrapSummary || ''));
    rows.push(['bootstrap (our own tor)', span]);
    if (tor.restarts) rows.push(['restarted (died under the shim)', String(tor.restarts) + (tor.restarts === 1 ? ' time' : ' times')]);
  } else rows.push(['tor', 'a running tor found at the SOCKS port']);
  box.append(table(rows));
}
function renderShim(shim, now) {
  if (!shim) { $('servers').textContent = 'the shim starts once tor is ready'; $('flows').textContent = ''; return; }
  $('servers').replaceChildren(table(shim.servers.map((s) => [s.label,
    s.reachable === undefined || s.reachable === null ? text('span', 'not dialed yet', 'warn') : s.reachable ? text('span', 'reachable', 'ok') : text('span', 'unreachable (' + s.lastError + ')', 'bad'),
    'last dial ' + ago(s.lastDialAt, now), s.healthy ? 'chosen by new flows' : text('span', 'skipped for ' + s.retryInS + ' s (' + s.failuresInRow + ' failed dials in a row)', 'warn'), s.pins.length ? 'pinned ' + s.pins.join(', ') : (s.transport === 'tls' ? 'CA-checked' : 'no pin')]), ['server', 'state', 'last dial', 'health', 'key']));
  const rows = shim.flows.map((f) => [f.label, f.open, f.opened, bytes(f.bytesToServer), bytes(f.bytesToApp)]);
  const t = table(rows, ['kind', 'open', 'total', 'to server', 'to app']);
  const p = text('p', 'listening on ' + shim.listen + ' · ' + shim.mode + ' mode · servers by ' + shim.serverChoice + ' · dial queue ' + shim.dialQueue);
  $('flows').replaceChildren(p, t);
  const drops = Object.entries(shim.drops).filter(([, n]) => n > 0);
  $('drops').replaceChildren(drops.length ? table(drops, ['dropped', 'count']) : text('p', 'no drops'));
}
function renderGraph(points) {
  const w = 360, h = 90, n = 120;
  const maxB = Math.max(1, ...points.map((p) => p.bytesPerSecond));
  const maxD = Math.max(1, ...points.map((p) => p.dropsPerSecond));
  const line = (key, max) => points.map((p, i) => ((w * (n - points.length + i)) / (n - 1)).toFixed(1) + ',' + (h - 2 - ((h - 4) * p[key]) / max).toFixed(1)).join(' ');
  $('bytes-line').setAttribute('points', line('bytesPerSecond', maxB));
  $('drops-line').setAttribute('points', line('dropsPerSecond', maxD));
  const last = points[points.length - 1];
  $('bytes-now').textContent = last ? bytes(last.bytesPerSecond) + '/s' : '';
  $('drops-now').textContent = last ? last.dropsPerSecond.toFixed(1) + '/s' : '';
}
let lastStatus;
async function poll() {
  try {
    const r = await fetch('/api/status', { cache: 'no-store' });
    const s = await r.json();
    lastStatus = s;
    renderTor(s.tor);
    renderShim(s.shim, s.now);
    renderGraph(s.history);
    $('updated').textContent = 'updated ' + new Date(s.now).toLocaleTimeString();
  } catch (e) {
    $('updated').textContent = 'the shim does not answer (stopped?)';
  }
}
const copy = $('copy');
if (copy) copy.addEventListener('click', async () => {
  try { await navigator.clipboard.writeText($('ice').textContent); $('copied').textContent = 'copied'; }
  catch { const r = document.createRange(); r.selectNodeContents($('ice')); getSelection().removeAllRanges(); getSelection().addRange(r); $('copied').textContent = 'selected: press Ctrl-C'; }
});
function showResult(state, lines) {
  const box = $('test-result');
  box.dataset.state = state;
  box.replaceChildren(...lines.map((l, i) => text('div', l, i === 0 ? (state === 'ok' ? 'ok' : state === 'failed' ? 'bad' : 'warn') : '')));
}
const STEP_OF_ICE_ERROR = { 401: 'turn-auth', 403: 'peer-policy', 701: 'socks' };
async function testCall() {
  $('test').disabled = true;
  showResult('running', ['calling… (a first call through Tor can take 10-30 s)']);
  const started = performance.now();
  let a, b;
  try {
    const r = await fetch('/api/test-call', { method: 'POST', headers: { 'x-onionturn-token': token } });
    if (!r.ok) throw Object.assign(new Error('the shim refused the test call: ' + (await r.text())), { step: undefined });
    const cfg = await r.json();
    let iceServers = cfg.iceServers;
    if (!iceServers) {
      const user = $('user') ? $('user').value : '', pass = $('pass') ? $('pass').value : '';
      if (!user || !pass) throw new Error('pass-through mode: paste a username and credential from your app server (or onionturn credentials) first');
      iceServers = [{ urls: turnUrls, username: user, credential: pass }];
    }
    const errors = [];
    a = new RTCPeerConnection({ iceServers, iceTransportPolicy: 'relay' });
    b = new RTCPeerConnection({ iceServers, iceTransportPolicy: 'relay' });
    for (const pc of [a, b]) pc.addEventListener('icecandidateerror', (e) => errors.push({ code: e.errorCode, text: e.errorText }));
    a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate).catch(() => {});
    b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate).catch(() => {});
    b.ondatachannel = (e) => { e.channel.onmessage = (m) => e.channel.send(m.data); };
    const dc = a.createDataChannel('test');
    const relays = new Map([[a, 0], [b, 0]]);
    const open = new Promise((resolve, reject) => {
      dc.onopen = resolve;
      a.oniceconnectionstatechange = () => { if (a.iceConnectionState === 'failed') reject(new Error('ICE failed')); };
      // No relay candidate once gathering is done: the TURN allocation itself failed.
      for (const pc of [a, b]) {
        pc.addEventListener('icecandidate', (e) => { if (e.candidate && e.candidate.type === 'relay') relays.set(pc, relays.get(pc) + 1); });
        pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete' && relays.get(pc) === 0) reject(new Error('no relay candidate: the TURN allocation through the shim failed')); });
      }
      setTimeout(() => reject(new Error('no connection within 60 s')), 60000);
    });
    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(a.localDescription);
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription);
    try { await open; } catch (e) { e.iceErrors = errors; throw e; }
    const setupMs = performance.now() - started;
    const rtts = [];
    showResult('running', ['connected in ' + setupMs.toFixed(0) + ' ms; measuring the round trip…']);
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      await new Promise((resolve, reject) => { dc.onmessage = resolve; dc.send('ping ' + i + ' ' + 'x'.repeat(1000)); setTimeout(() => reject(new Error('an echo got lost')), 10000); });
      rtts.push(performance.now() - t0);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    rtts.sort((x, y) => x - y);
    let pair = '';
    const stats = await a.getStats();
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const p = stats.get(s.selectedCandidatePairId), l = stats.get(p.localCandidateId), rc = stats.get(p.remoteCandidateId);
        pair = l.candidateType + '/' + (l.relayProtocol || l.protocol) + ' ↔ ' + rc.candidateType + '/' + rc.protocol + ' via ' + (l.url || 'the shim');
      }
    });
    showResult('ok', ['call connected', 'setup ' + setupMs.toFixed(0) + ' ms', 'RTT median ' + rtts[5].toFixed(0) + ' ms (10 data-channel echoes)', 'candidate pair ' + pair]);
  } catch (e) {
    const lines = ['call failed: ' + e.message];
    await poll();
    const t = lastStatus && lastStatus.test;
    const codes = (e.iceErrors || []).map((x) => x.code);
    const fromIce = codes.map((c) => STEP_OF_ICE_ERROR[c]).find(Boolean);
    if (t && t.step) lines.push('failed at: ' + t.step, t.detail);
    else if (lastStatus && lastStatus.tor && !lastStatus.tor.up) lines.push('failed at: socks', 'tor is down: nothing (or no Tor) answers at the SOCKS port');
    else if (fromIce) lines.push('failed at: ' + fromIce, 'ICE candidate errors ' + codes.join(', '));
    else if (codes.length) lines.push('ICE candidate errors ' + codes.join(', '));
    showResult('failed', lines);
  } finally {
    if (a) a.close();
    if (b) b.close();
    $('test').disabled = false;
  }
}
$('test').addEventListener('click', () => { void testCall(); });
void poll();
setInterval(poll, 1000);
`;
