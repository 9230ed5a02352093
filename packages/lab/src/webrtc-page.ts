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

export interface BenchCallConfig {
  readonly iceServers: CallConfig['iceServers'];
  /** The second peer's servers (its own shim, as a second user's machine has), when not the first's. */
  readonly iceServersB?: CallConfig['iceServers'];
  /** Seconds of media after the idle pings. */
  readonly seconds: number;
  /** Data-channel pings before media starts (sequential), for rttIdleMs. Default 10. */
  readonly idlePings?: number;
  /** Data-channel ping interval during media, ms. Default 500. */
  readonly pingEveryMs?: number;
  /** Limit for setup (connected) in ms. Default 60000. */
  readonly setupTimeoutMs?: number;
  readonly width?: number;
  readonly height?: number;
  /**
   * Seconds into the media at which the page calls window.benchCut() (CallBrowser.benchCall's
   * onCut: the bench cuts the call's Tor streams); from 3 s before it the receiver's
   * framesDecoded is polled every 100 ms (frameSamples).
   */
  readonly cutAtSeconds?: number;
}

/** One call's measurements (page side; medians and percentiles are taken by the caller). */
export interface BenchCallResult {
  readonly error: string | undefined;
  /** createOffer to the data channel open (ICE, TURN allocations, DTLS, SCTP), ms. */
  readonly setupMs: number;
  /** createOffer to ICE connected, ms. */
  readonly iceMs: number;
  readonly pairs: CandidatePairInfo[];
  readonly candidateErrors: { errorCode: number; errorText: string; url: string }[];
  /** Data-channel ping round trips before media, ms. */
  readonly idleRttMs: number[];
  /** Data-channel ping round trips during media, ms (lost or >10 s pings are counted in dcLost). */
  readonly dcRttMs: number[];
  readonly dcLost: number;
  /** RTCP round trips (remote-inbound-rtp.roundTripTime, audio and video), one per new measurement, ms. */
  readonly rtcpRttMs: number[];
  /** Audio inbound-rtp jitter samples (once a second), ms. */
  readonly jitterMs: number[];
  /**
   * Each video frame b showed during media: requestVideoFrameCallback's expectedDisplayTime (ms)
   * and the frame's RTP timestamp, in pairs (videoLagMs turns them into the video's lag). What
   * waits in any queue in front of the video, which RTCP's round trip does not show (RTCP passes
   * held video). Chromium gives a remote frame's captureTime only with the abs-capture-time header
   * extension, which is not negotiated; hence the RTP timestamp.
   */
  readonly videoFrames: number[];
  readonly mediaSeconds: number;
  readonly framesDecoded: number;
  readonly freezeCount: number;
  readonly freezeMs: number;
  readonly concealedSamples: number;
  readonly totalSamples: number;
  readonly bytesReceived: number;
  /** With cutAtSeconds: when benchCut() was called, ms after media start (undefined: no cut). */
  readonly cutAtMs: number | undefined;
  /** What benchCut() returned (the number of streams cut). */
  readonly cutStreams: number | undefined;
  /** With cutAtSeconds: the receiver's framesDecoded every ~100 ms, at = ms after media start. */
  readonly frameSamples: { at: number; framesDecoded: number }[];
  /** ICE connection states of the sending peer after the cut, with ms after media start. */
  readonly iceAfterCut: { at: number; state: string }[];
  /** ms after createOffer: each peer's first relay candidate, DTLS done (absent: never); ICE connected is iceMs. */
  readonly setupSplit: { relayA?: number; relayB?: number; dtls?: number };
  /**
   * What the sender did during media (why the receiver saw what it saw): counters of a's video
   * and audio outbound-rtp and b's video inbound-rtp (differences over the media), and a's
   * estimate of the path (candidate-pair availableOutgoingBitrate, once a second, bit/s).
   */
  readonly sender: SenderSummary;
}

/** See BenchCallResult.sender. */
export interface SenderSummary {
  /** Payload bytes; header bytes (RTP headers and padding, which carries Chromium's bandwidth probes). */
  videoBytesSent: number;
  videoHeaderBytesSent: number;
  /** Payload bytes of retransmissions (RTX). */
  retransmittedBytesSent: number;
  audioBytesSent: number;
  audioHeaderBytesSent: number;
  framesEncoded: number;
  keyFramesEncoded: number;
  nacksReceived: number;
  plisReceived: number;
  /** b's inbound video: packets lost (as RTP sequence numbers show), key frames decoded. */
  packetsLost: number;
  keyFramesDecoded: number;
  availableOutgoingBitrate: number[];
  targetBitrate: number[];
  /** Seconds the encoder was limited by bandwidth or CPU over the media (qualityLimitationDurations). */
  limitedBandwidthS: number;
  limitedCpuS: number;
  /**
   * Where a's video waited outside the network, mean ms per packet or frame over the media:
   * a's pacer (outbound-rtp totalPacketSendDelay / packetsSent, video and audio) and b's jitter
   * buffer (inbound-rtp jitterBufferDelay / jitterBufferEmittedCount, video). Absent: not reported.
   */
  videoPacerMs?: number;
  audioPacerMs?: number;
  videoJitterBufferMs?: number;
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

// A benchmark call: peer a sends fake 640x480 video + audio to peer b, relay-only, with a data
// channel; media transceivers are negotiated up front without tracks, so the idle pings see an
// empty path, and the tracks are put in afterwards (replaceTrack, no renegotiation).
const RUN_BENCH_CALL = String.raw`
async function runBenchCall(config) {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const r = { error: undefined, setupMs: 0, iceMs: 0, pairs: [], candidateErrors: [], idleRttMs: [], dcRttMs: [], dcLost: 0, rtcpRttMs: [], jitterMs: [], videoFrames: [],
    mediaSeconds: 0, framesDecoded: 0, freezeCount: 0, freezeMs: 0, concealedSamples: 0, totalSamples: 0, bytesReceived: 0,
    cutAtMs: undefined, cutStreams: undefined, frameSamples: [], iceAfterCut: [], setupSplit: {},
    sender: { videoBytesSent: 0, videoHeaderBytesSent: 0, retransmittedBytesSent: 0, audioBytesSent: 0, audioHeaderBytesSent: 0, framesEncoded: 0, keyFramesEncoded: 0,
      nacksReceived: 0, plisReceived: 0, packetsLost: 0, keyFramesDecoded: 0, availableOutgoingBitrate: [], targetBitrate: [], limitedBandwidthS: 0, limitedCpuS: 0,
      videoPacerMs: undefined, audioPacerMs: undefined, videoJitterBufferMs: undefined } };
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: config.width || 640, height: config.height || 480 } });
  const a = new RTCPeerConnection({ iceServers: config.iceServers, iceTransportPolicy: 'relay' });
  const b = new RTCPeerConnection({ iceServers: config.iceServersB || config.iceServers, iceTransportPolicy: 'relay' });
  for (const pc of [a, b]) pc.addEventListener('icecandidateerror', (ev) => r.candidateErrors.push({ errorCode: ev.errorCode, errorText: ev.errorText, url: ev.url }));
  a.onicecandidate = (e) => { if (e.candidate) b.addIceCandidate(e.candidate).catch(() => {}); };
  b.onicecandidate = (e) => { if (e.candidate) a.addIceCandidate(e.candidate).catch(() => {}); };
  const snapshot = async (pc) => { const m = new Map(); (await pc.getStats()).forEach((s) => m.set(s.id, s)); return m; };
  const inbound = (stats, kind) => [...stats.values()].find((s) => s.type === 'inbound-rtp' && s.kind === kind) || {};
  const outbound = (stats, kind) => [...stats.values()].find((s) => s.type === 'outbound-rtp' && s.kind === kind) || {};
  // Each transport's selected candidate pair (one with BUNDLE).
  const selectedPairs = (stats) => [...stats.values()].filter((s) => s.type === 'transport' && s.selectedCandidatePairId).map((s) => stats.get(s.selectedCandidatePairId)).filter(Boolean);
  try {
    const video = a.addTransceiver('video', { direction: 'sendonly' });
    const audio = a.addTransceiver('audio', { direction: 'sendonly' });
    const dc = a.createDataChannel('ping');
    b.ondatachannel = (e) => { e.channel.onmessage = (m) => e.channel.send(m.data); };
    // Play the received audio, or nothing pulls it through the jitter buffer (no concealment stats).
    // The video goes to a <video> too: requestVideoFrameCallback gives each shown frame's display
    // time and RTP timestamp (BenchCallResult.videoFrames), kept once media has started.
    let measuring = false;
    b.ontrack = (e) => {
      const el = document.createElement(e.track.kind === 'audio' ? 'audio' : 'video');
      el.srcObject = new MediaStream([e.track]);
      el.autoplay = true;
      el.muted = e.track.kind !== 'audio';
      document.body.appendChild(el);
      el.play().catch(() => {});
      if (e.track.kind !== 'video' || typeof el.requestVideoFrameCallback !== 'function') return;
      const onFrame = (now, md) => {
        if (measuring && typeof md.rtpTimestamp === 'number') r.videoFrames.push(md.expectedDisplayTime, md.rtpTimestamp);
        if (el.isConnected) el.requestVideoFrameCallback(onFrame);
      };
      el.requestVideoFrameCallback(onFrame);
    };
    const pending = new Map();
    dc.onmessage = (m) => { const id = String(m.data).split(' ')[0]; const p = pending.get(id); if (p) { pending.delete(id); p(performance.now()); } };
    let seq = 0;
    const ping = (timeoutMs) => new Promise((resolve) => {
      const id = 'p' + (seq++); const sent = performance.now();
      const timer = setTimeout(() => { pending.delete(id); resolve(undefined); }, timeoutMs);
      pending.set(id, (at) => { clearTimeout(timer); resolve(at - sent); });
      dc.send(id + ' ' + 'x'.repeat(100));
    });
    const t0 = performance.now();
    a.oniceconnectionstatechange = () => { if (!r.iceMs && (a.iceConnectionState === 'connected' || a.iceConnectionState === 'completed')) r.iceMs = performance.now() - t0; };
    // Where setup goes: each peer's first relay candidate (its Allocate done), ICE connected
    // (iceMs), DTLS done (connectionState), the data channel open (setupMs).
    const mark = (name) => { if (r.setupSplit[name] === undefined) r.setupSplit[name] = Math.round(performance.now() - t0); };
    a.addEventListener('icecandidate', (e) => { if (e.candidate && e.candidate.type === 'relay') mark('relayA'); });
    b.addEventListener('icecandidate', (e) => { if (e.candidate && e.candidate.type === 'relay') mark('relayB'); });
    a.addEventListener('connectionstatechange', () => { if (a.connectionState === 'connected') mark('dtls'); });
    const offer = await a.createOffer();
    await a.setLocalDescription(offer);
    await b.setRemoteDescription(offer);
    const answer = await b.createAnswer();
    await b.setLocalDescription(answer);
    await a.setRemoteDescription(answer);
    const limit = config.setupTimeoutMs || 60000;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('data channel did not open in ' + limit + ' ms')), limit);
      dc.onopen = () => { clearTimeout(timer); resolve(); };
    });
    r.setupMs = performance.now() - t0;
    for (let i = 0; i < (config.idlePings ?? 10); i++) {
      const rtt = await ping(10000);
      if (rtt !== undefined) r.idleRttMs.push(rtt);
      await sleep(100);
    }
    await video.sender.replaceTrack(stream.getVideoTracks()[0]);
    await audio.sender.replaceTrack(stream.getAudioTracks()[0]);
    const mediaStart = performance.now();
    measuring = true;
    const before = await snapshot(b);
    const v0 = inbound(before, 'video'), a0 = inbound(before, 'audio');
    const sentBefore = await snapshot(a);
    const ov0 = outbound(sentBefore, 'video'), oa0 = outbound(sentBefore, 'audio');
    const seen = new Map();
    const pingEvery = config.pingEveryMs || 500;
    const pings = [];
    let nextStats = mediaStart + 1000;
    // The cut (bench:call --cut-at): frames decoded polled every 100 ms around and after it.
    let poller;
    const cutTimers = [];
    if (typeof config.cutAtSeconds === 'number') {
      const cutAt = config.cutAtSeconds * 1000;
      cutTimers.push(setTimeout(() => {
        poller = setInterval(() => {
          const at = performance.now() - mediaStart;
          b.getStats().then((st) => { st.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') r.frameSamples.push({ at, framesDecoded: s.framesDecoded || 0 }); }); }, () => {});
        }, 100);
      }, Math.max(0, cutAt - 3000)));
      cutTimers.push(setTimeout(() => {
        r.cutAtMs = performance.now() - mediaStart;
        a.addEventListener('iceconnectionstatechange', () => r.iceAfterCut.push({ at: performance.now() - mediaStart, state: a.iceConnectionState }));
        window.benchCut().then((n) => { r.cutStreams = n; }, (e) => { r.cutStreams = -1; });
      }, cutAt));
    }
    while (performance.now() - mediaStart < config.seconds * 1000) {
      pings.push(ping(10000).then((rtt) => { if (rtt === undefined) r.dcLost++; else r.dcRttMs.push(rtt); }));
      await sleep(pingEvery);
      if (performance.now() >= nextStats) {
        nextStats += 1000;
        const sa = await snapshot(a);
        const pair = selectedPairs(sa)[0] || {};
        if (typeof pair.availableOutgoingBitrate === 'number') r.sender.availableOutgoingBitrate.push(pair.availableOutgoingBitrate);
        const ov = outbound(sa, 'video');
        if (typeof ov.targetBitrate === 'number') r.sender.targetBitrate.push(ov.targetBitrate);
        for (const s of sa.values()) {
          if (s.type === 'remote-inbound-rtp' && typeof s.roundTripTime === 'number') {
            const n = s.roundTripTimeMeasurements || 0;
            if (n !== seen.get(s.id)) { seen.set(s.id, n); r.rtcpRttMs.push(s.roundTripTime * 1000); }
          }
        }
        const ia = inbound(await snapshot(b), 'audio');
        if (typeof ia.jitter === 'number') r.jitterMs.push(ia.jitter * 1000);
      }
    }
    await Promise.all(pings);
    measuring = false;
    for (const t of cutTimers) clearTimeout(t);
    if (poller) clearInterval(poller);
    const after = await snapshot(b);
    r.mediaSeconds = (performance.now() - mediaStart) / 1000;
    const v1 = inbound(after, 'video'), a1 = inbound(after, 'audio');
    r.framesDecoded = (v1.framesDecoded || 0) - (v0.framesDecoded || 0);
    r.freezeCount = (v1.freezeCount || 0) - (v0.freezeCount || 0);
    r.freezeMs = ((v1.totalFreezesDuration || 0) - (v0.totalFreezesDuration || 0)) * 1000;
    r.concealedSamples = (a1.concealedSamples || 0) - (a0.concealedSamples || 0);
    r.totalSamples = (a1.totalSamplesReceived || 0) - (a0.totalSamplesReceived || 0);
    r.bytesReceived = (v1.bytesReceived || 0) + (a1.bytesReceived || 0) - (v0.bytesReceived || 0) - (a0.bytesReceived || 0);
    const sentAfter = await snapshot(a);
    const ov1 = outbound(sentAfter, 'video'), oa1 = outbound(sentAfter, 'audio');
    const d = (x1, x0, k) => (x1[k] || 0) - (x0[k] || 0);
    const q = (x, k) => (x.qualityLimitationDurations && x.qualityLimitationDurations[k]) || 0;
    // Mean ms of what a counter sums (seconds) per what another counts, over the media.
    const perMs = (x1, x0, sum, count) => (typeof x1[sum] === 'number' && d(x1, x0, count) > 0 ? (d(x1, x0, sum) * 1000) / d(x1, x0, count) : undefined);
    Object.assign(r.sender, {
      videoBytesSent: d(ov1, ov0, 'bytesSent'), videoHeaderBytesSent: d(ov1, ov0, 'headerBytesSent'), retransmittedBytesSent: d(ov1, ov0, 'retransmittedBytesSent'),
      audioBytesSent: d(oa1, oa0, 'bytesSent'), audioHeaderBytesSent: d(oa1, oa0, 'headerBytesSent'), framesEncoded: d(ov1, ov0, 'framesEncoded'), keyFramesEncoded: d(ov1, ov0, 'keyFramesEncoded'),
      nacksReceived: d(ov1, ov0, 'nackCount'), plisReceived: d(ov1, ov0, 'pliCount'), packetsLost: d(v1, v0, 'packetsLost'), keyFramesDecoded: d(v1, v0, 'keyFramesDecoded'),
      limitedBandwidthS: q(ov1, 'bandwidth') - q(ov0, 'bandwidth'), limitedCpuS: q(ov1, 'cpu') - q(ov0, 'cpu'),
      videoPacerMs: perMs(ov1, ov0, 'totalPacketSendDelay', 'packetsSent'), audioPacerMs: perMs(oa1, oa0, 'totalPacketSendDelay', 'packetsSent'),
      videoJitterBufferMs: perMs(v1, v0, 'jitterBufferDelay', 'jitterBufferEmittedCount'),
    });
    for (const pc of [a, b]) {
      const stats = await snapshot(pc);
      for (const pair of selectedPairs(stats)) {
        const local = stats.get(pair.localCandidateId);
        const remote = stats.get(pair.remoteCandidateId);
        r.pairs.push({ localType: local && local.candidateType, remoteType: remote && remote.candidateType, relayProtocol: local && local.relayProtocol, url: local && local.url, localAddress: local && local.address });
      }
    }
  } catch (err) {
    r.error = String(err && err.message ? err.message : err);
  } finally {
    a.close();
    b.close();
    for (const t of stream.getTracks()) t.stop();
    for (const el of document.querySelectorAll('audio, video')) el.remove();
  }
  return r;
}`;

export const PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>onionturn call</title>
<script>${RUN_CALL}; window.runCall = runCall;</script>
<script>${RUN_BENCH_CALL}; window.runBenchCall = runBenchCall;</script><body>onionturn test call</body>`;
