// The page a real Chromium runs: two RTCPeerConnections in one page, relay-only, so every
// packet goes through the TURN server(s) under test. Served from http://127.0.0.1 (a secure
// enough origin for getUserMedia). The function below is stringified into the page.

export interface CallConfig {
  readonly iceServers: readonly { urls: string | string[]; username?: string; credential?: string }[];
  /** The second peer's servers, when it uses others than the first. */
  readonly iceServersB?: readonly { urls: string | string[]; username?: string; credential?: string }[];
  /** Also send fake audio + video and count decoded frames. */
  readonly media: boolean;
  readonly messages: number;
  readonly timeoutMs: number;
}

export interface CandidatePairInfo {
  readonly localType: string;
  readonly remoteType: string;
  readonly relayProtocol: string | undefined;
  readonly url: string | undefined;
  readonly localAddress: string | undefined;
}

export interface CallResult {
  readonly connected: boolean;
  readonly error: string | undefined;
  readonly setupMs: number;
  readonly echoed: number;
  readonly rttMs: number[];
  readonly pairs: CandidatePairInfo[];
  readonly framesDecoded: { audio: number; video: number };
  readonly candidateErrors: { errorCode: number; errorText: string; url: string }[];
}

// Runs in the browser: plain JavaScript in a string, so this package needs no DOM typings.
const RUN_CALL = String.raw`
async function runCall(config) {
  const candidateErrors = [];
  const a = new RTCPeerConnection({ iceServers: config.iceServers, iceTransportPolicy: 'relay' });
  const b = new RTCPeerConnection({ iceServers: config.iceServersB || config.iceServers, iceTransportPolicy: 'relay' });
  for (const pc of [a, b]) {
    pc.addEventListener('icecandidateerror', (ev) => {
      candidateErrors.push({ errorCode: ev.errorCode, errorText: ev.errorText, url: ev.url });
    });
  }
  a.onicecandidate = (e) => { if (e.candidate) b.addIceCandidate(e.candidate).catch(() => {}); };
  b.onicecandidate = (e) => { if (e.candidate) a.addIceCandidate(e.candidate).catch(() => {}); };
  const start = performance.now();
  const result = { connected: false, error: undefined, setupMs: 0, echoed: 0, rttMs: [], pairs: [], framesDecoded: { audio: 0, video: 0 }, candidateErrors };
  try {
    if (config.media) {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240 } });
      for (const t of stream.getTracks()) a.addTrack(t, stream);
    }
    const dc = a.createDataChannel('echo');
    b.ondatachannel = (e) => { e.channel.onmessage = (m) => e.channel.send(m.data); };
    const offer = await a.createOffer();
    await a.setLocalDescription(offer);
    await b.setRemoteDescription(offer);
    const answer = await b.createAnswer();
    await b.setLocalDescription(answer);
    await a.setRemoteDescription(answer);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('data channel did not open in ' + config.timeoutMs + ' ms')), config.timeoutMs);
      dc.onopen = () => { clearTimeout(timer); resolve(); };
    });
    result.connected = true;
    result.setupMs = performance.now() - start;
    for (let i = 0; i < config.messages; i++) {
      const sent = performance.now();
      const payload = 'ping ' + i + ' ' + 'x'.repeat(100);
      const back = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('message ' + i + ' did not come back')), 5000);
        dc.onmessage = (m) => { clearTimeout(timer); resolve(String(m.data)); };
        dc.send(payload);
      });
      if (back === payload) { result.echoed++; result.rttMs.push(performance.now() - sent); }
    }
    if (config.media) await new Promise((r) => setTimeout(r, 3000));
    for (const pc of [a, b]) {
      const stats = await pc.getStats();
      const byId = new Map();
      stats.forEach((s) => byId.set(s.id, s));
      stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = byId.get(s.selectedCandidatePairId);
          const local = pair && byId.get(pair.localCandidateId);
          const remote = pair && byId.get(pair.remoteCandidateId);
          result.pairs.push({ localType: local && local.candidateType, remoteType: remote && remote.candidateType, relayProtocol: local && local.relayProtocol, url: local && local.url, localAddress: local && local.address });
        }
        if (s.type === 'inbound-rtp' && s.kind === 'video') result.framesDecoded.video += s.framesDecoded || 0;
        if (s.type === 'inbound-rtp' && s.kind === 'audio') result.framesDecoded.audio += s.packetsReceived || 0;
      });
    }
  } catch (err) {
    result.error = String(err && err.message ? err.message : err);
  } finally {
    a.close();
    b.close();
  }
  return result;
}`;

export const PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>onionturn call</title>
<script>${RUN_CALL}; window.runCall = runCall;</script><body>onionturn test call</body>`;
