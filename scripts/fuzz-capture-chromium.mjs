#!/usr/bin/env node
// Captures what a real Chromium (Debian chromium driven by playwright-core) sends to `onionturn
// server` during a relay-only call, over TURN/UDP and TURN/TCP, through recording proxies on
// loopback, and saves it as fuzz seeds: each STUN message for stun-decoder, each ChannelData frame
// for channel-data, each TCP stream for stream-framer, and each client (a UDP source or a TCP
// connection) as a server-core conversation (STUN requests re-signed with the fuzz credential,
// peers moved off loopback).
// Run once; the files are checked in (fuzz/corpus/*/chromium-*.hex).
//   node scripts/fuzz-capture-chromium.mjs
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { prepare, root } from './prepare.mjs';

await prepare('fuzz-capture-chromium');
// The workspace's built code, imported once prepare() has built it (a fresh checkout has no dist yet).
const { FrameKind, StreamFramer } = await import('@onionturn/protocol');
const { CallBrowser, ProcessGroup, freePort, portRange, sleep, waitFor } = await import('@onionturn/testkit');
const { saveInput } = await import('../fuzz/dist/src/corpus.js');
const { Op, RESIGN } = await import('../fuzz/dist/src/targets/server-core.js');
const { writeConversation } = await import('../fuzz/dist/src/conversation.js');

const USER = 'capture';
const PASSWORD = 'capture-password';
/** STUN's first two bits are 00; ChannelData's 01 (RFC 8656 12). */
const isStun = (b) => b.length >= 20 && (b[0] & 0xc0) === 0;
/** A STUN message's shape: its type and its attribute types (many messages differ only in IDs and values). */
function stunShape(b) {
  const types = [];
  for (let at = 20; at + 4 <= b.length; at += 4 + ((b.readUInt16BE(at + 2) + 3) & ~3)) types.push(b.readUInt16BE(at));
  return `${b.readUInt16BE(0)}:${types.join(',')}`;
}

/**
 * The fuzz harness's server denies loopback peers (as a real one does), and Chromium's peers here
 * are relay addresses on 127.0.0.1: in the server-core conversations each IPv4 XOR-PEER-ADDRESS
 * names a public harness peer instead (the request is re-signed anyway), so permissions, channels
 * and Send get past the policy.
 */
const HARNESS_PEER = [93, 184, 216, 34];
function publicPeers(b) {
  const out = Buffer.from(b);
  for (let at = 20; at + 4 <= out.length; at += 4 + ((out.readUInt16BE(at + 2) + 3) & ~3)) {
    if (out.readUInt16BE(at) === 0x0012 && out.readUInt16BE(at + 2) === 8 && out[at + 5] === 1) {
      HARNESS_PEER.forEach((byte, i) => (out[at + 8 + i] = byte ^ [0x21, 0x12, 0xa4, 0x42][i]));
    }
  }
  return out;
}

const group = new ProcessGroup();
const closers = [];
let browser;
try {
  const port = await freePort();
  const relay = portRange(100);
  const server = group.spawn('onionturn server', process.execPath, [
    join(root, 'packages/cli/bin/onionturn.js'),
    'server',
    '--listen',
    `tcp://127.0.0.1:${port}`,
    '--listen',
    `udp://127.0.0.1:${port}`,
    '--realm',
    'capture.test',
    '--user',
    `${USER}:${PASSWORD}`,
    '--allow-loopback-peers',
    '--relay-ports',
    `${relay.min}-${relay.max}`,
  ]);
  await waitFor('the server', () => server.output().includes('server-started'), 10_000);

  // UDP: one upstream socket per Chromium source address, so the server sees one client each.
  const udpClients = new Map();
  const udpFront = createSocket('udp4');
  udpFront.on('message', (m, from) => {
    const key = `${from.address}:${from.port}`;
    let c = udpClients.get(key);
    if (!c) {
      const up = createSocket('udp4');
      up.on('message', (reply) => udpFront.send(reply, from.port, from.address));
      up.bind(0, '127.0.0.1');
      c = { up, datagrams: [] };
      udpClients.set(key, c);
      closers.push(() => up.close());
    }
    c.datagrams.push(Buffer.from(m));
    c.up.send(m, port, '127.0.0.1');
  });
  udpFront.bind(0, '127.0.0.1');
  await once(udpFront, 'listening');
  closers.push(() => udpFront.close());

  const streams = [];
  const tcpFront = createServer((down) => {
    const chunks = [];
    streams.push(chunks);
    const up = connect(port, '127.0.0.1');
    down.on('data', (c) => {
      chunks.push(Buffer.from(c));
      up.write(c);
    });
    up.on('data', (c) => down.write(c));
    const end = () => (down.destroy(), up.destroy());
    down.on('close', end).on('error', end);
    up.on('close', end).on('error', end);
  });
  tcpFront.listen(0, '127.0.0.1');
  await once(tcpFront, 'listening');
  closers.push(() => tcpFront.close());

  browser = await CallBrowser.start();
  const credentials = { username: USER, credential: PASSWORD };
  for (const [transport, url] of [
    ['udp', `turn:127.0.0.1:${udpFront.address().port}?transport=udp`],
    ['tcp', `turn:127.0.0.1:${tcpFront.address().port}?transport=tcp`],
  ]) {
    const r = await browser.call({ iceServers: [{ urls: url, ...credentials }], messages: 5, timeoutMs: 30_000 });
    console.log(`chromium over TURN/${transport}: connected ${r.connected}, echoed ${r.echoed}${r.error ? `, error ${r.error}` : ''}`);
    if (!r.connected) throw new Error(`the ${transport} call did not connect: ${r.error}`);
  }
  await sleep(300);

  let stun = 0;
  let channel = 0;
  const seen = new Set();
  const keep = (target, frame, comment) => {
    // One seed per STUN shape; ChannelData frames differ in length only.
    const key = target === 'stun-decoder' ? `stun:${stunShape(frame)}` : `${target}:${frame.length}`;
    if (seen.has(key)) return;
    seen.add(key);
    saveInput(target, 'chromium', frame, comment);
    if (target === 'stun-decoder') stun++;
    else channel++;
  };
  for (const [i, { datagrams }] of [...udpClients.values()].entries()) {
    const records = [{ op: Op.Client, payload: Buffer.from([2]) }];
    for (const d of datagrams) {
      if (isStun(d)) {
        keep('stun-decoder', d, 'Chromium (relay-only call over TURN/UDP): a message it sent');
        records.push({ op: Op.Datagram | RESIGN, payload: publicPeers(d) });
      } else {
        // Media and data ride ChannelData: a few frames are enough for the seeds.
        if (channel < 12) keep('channel-data', d, 'Chromium (relay-only call over TURN/UDP): a ChannelData frame it sent');
        records.push({ op: Op.Datagram, payload: d });
      }
    }
    saveInput(
      'server-core',
      'chromium',
      writeConversation({ config: 0, records: records.slice(0, 200) }),
      `Chromium relay-only call over TURN/UDP: source ${i}, requests re-signed`,
    );
  }
  for (const [i, chunks] of streams.entries()) {
    const stream = Buffer.concat(chunks);
    if (stream.length === 0) continue;
    saveInput(
      'stream-framer',
      'chromium',
      Buffer.concat([Buffer.from([0, i]), stream.subarray(0, 16_000)]),
      `Chromium over TURN/TCP: connection ${i}, client to server`,
    );
    const records = [];
    new StreamFramer((frame, kind) => {
      if (kind === FrameKind.Stun) {
        keep('stun-decoder', Buffer.from(frame), 'Chromium (relay-only call over TURN/TCP): a message it sent');
        records.push({ op: Op.Stun | RESIGN, payload: publicPeers(Buffer.from(frame)) });
      } else records.push({ op: Op.ChannelData, payload: Buffer.from(frame) });
    }).push(stream);
    saveInput(
      'server-core',
      'chromium',
      writeConversation({ config: 0, records: records.slice(0, 200) }),
      `Chromium relay-only call over TURN/TCP: connection ${i}, requests re-signed`,
    );
  }
  console.log(`saved: ${udpClients.size} UDP sources, ${streams.length} TCP connections, ${stun} STUN messages, ${channel} ChannelData frames`);
} finally {
  await browser?.close();
  for (const c of closers) c();
  await group.stopAll();
}
