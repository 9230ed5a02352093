#!/usr/bin/env node
// Captures what coturn's turnutils_uclient sends to `onionturn server` over TCP (through a
// recording proxy on loopback) and saves it as fuzz seeds: each STUN message for stun-decoder,
// the TCP stream for stream-framer, and the whole client side as a server-core conversation
// (requests re-signed with the fuzz credential). Run once; the files are checked in.
//   node scripts/fuzz-capture.mjs
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepare, root } from './prepare.mjs';

await prepare('fuzz-capture');
// The workspace's built code, imported once prepare() has built it (a fresh checkout has no dist yet).
const { FrameKind, StreamFramer } = await import('@onionturn/protocol');
const { ProcessGroup, freePort, portRange, runUclient, sleep, waitFor } = await import('@onionturn/testkit');
const { saveInput } = await import('../fuzz/dist/src/corpus.js');
const { Op, RESIGN } = await import('../fuzz/dist/src/targets/server-core.js');
const { writeConversation } = await import('../fuzz/dist/src/conversation.js');
const SECRET = 'capture-secret';
const group = new ProcessGroup();
const dir = mkdtempSync(join(tmpdir(), 'onionturn-capture-'));
try {
  writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
  const port = await freePort();
  const relay = portRange(100);
  const server = group.spawn('onionturn server', process.execPath, [
    join(root, 'packages/cli/bin/onionturn.js'),
    'server',
    '--listen',
    `tcp://127.0.0.1:${port}`,
    '--realm',
    'capture.test',
    '--secret-file',
    join(dir, 'secret'),
    '--allow-loopback-peers',
    '--relay-ports',
    `${relay.min}-${relay.max}`,
  ]);
  await waitFor('the server', () => server.output().includes('server-started'), 10_000);
  const peer = createSocket('udp4');
  peer.on('message', (m, r) => peer.send(m, r.port, r.address));
  peer.bind(0, '127.0.0.1');
  await once(peer, 'listening');
  const streams = [];
  const proxy = createServer((down) => {
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
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const r = await runUclient(group, {
    server: { host: '127.0.0.1', port: proxy.address().port },
    secret: SECRET,
    peer: { host: '127.0.0.1', port: peer.address().port },
    tcp: true,
    clients: 1,
    messages: 3,
    length: 60,
    noRtcp: true,
  });
  console.log(`uclient exit ${r.exitCode}, ${r.received}/${r.sent} back, ${streams.length} connections`);
  await sleep(200);
  proxy.close();
  peer.close();
  for (const [i, chunks] of streams.entries()) {
    const stream = Buffer.concat(chunks);
    if (stream.length === 0) continue;
    saveInput(
      'stream-framer',
      'uclient',
      Buffer.concat([Buffer.from([0, i]), stream]),
      `turnutils_uclient -t -c -n 3 -l 60: connection ${i}, client to server`,
    );
    const records = [];
    new StreamFramer((frame, kind) => {
      if (kind === FrameKind.Stun) {
        saveInput('stun-decoder', 'uclient', Buffer.from(frame), 'turnutils_uclient -t: a message it sent');
        records.push({ op: Op.Stun | RESIGN, payload: Buffer.from(frame) });
      } else {
        records.push({ op: Op.ChannelData, payload: Buffer.from(frame) });
      }
    }).push(stream);
    saveInput('server-core', 'uclient', writeConversation({ config: 0, records }), `turnutils_uclient -t -c -n 3 -l 60: connection ${i}, requests re-signed`);
  }
} finally {
  await group.stopAll();
  rmSync(dir, { recursive: true, force: true });
}
