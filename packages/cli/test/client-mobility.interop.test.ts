// TURN mobility through a private Tor network of real tor processes (issue 14, deliverable 4):
// a UDP app talks to a UDP peer through a shim forward (the shim owns the allocation), the
// shim's Tor stream to the server is cut inside tor (CLOSESTREAM), and the shim takes the same
// allocation over on a new circuit: the peer keeps hearing from the SAME relay address, the app
// keeps its socket and hears the peer again. Prints the gap from the cut to the first datagram
// the app gets back. A UDP app's take-over negotiates the delay extension again on the new stream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttributeType, MessageBuilder, MessageClass, Method, StreamFramer, decodeMessage, longTermKey, readText, type StunMessage } from '@onionturn/protocol';
import {
  freePort,
  ProcessGroup,
  runUclient,
  sleep,
  type RunningServer,
  type Started,
  startServer,
  startTorNetwork,
  type TorNetwork,
  waitFor,
  shimArgs,
} from '@onionturn/testkit';
import { shimPort, spawnClient } from './run-cli.js';

const SECRET = 'tor-mobility-secret';
const INTERVAL_MS = 20;
/** How long the forward case watches which streams carry traffic (tor reports a busy stream once a second). */
const BUSY_WINDOW_MS = 3500;

/** A connection through socksGate(): the shim's side, tor's side, bytes both ways. */
interface GatedConn {
  readonly app: Socket;
  readonly tor: Socket;
  bytes: number;
}

async function udpSocket(): Promise<UdpSocket> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

describe('TURN mobility on a private Tor network', () => {
  const group = new ProcessGroup();
  const sockets: UdpSocket[] = [];
  let net: TorNetwork;
  let server: RunningServer;
  let shim: Started;
  let metricsPort: number;
  /** The server's onionturn_delay_feedback_negotiated_total. */
  const negotiated = async (): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    return Number(/^onionturn_delay_feedback_negotiated_total (\d+)$/m.exec(text)?.[1] ?? NaN);
  };
  const dir = mkdtempSync(join(tmpdir(), 'onionturn-mobility-'));
  /** The server's mobility lines (moved, detached, refused and why), for failure messages. */
  const serverMobility = (): string =>
    server.process
      .output()
      .split('\n')
      .filter((l) => /allocation-moved|allocation-detached|mobility-refused/.test(l))
      .slice(-20)
      .join('\n');

  /** A UDP peer that echoes, noting where each datagram came from (the relay address) and when. */
  const echoPeer = async (): Promise<{ peer: UdpSocket; sources: Set<string>; heard: number[] }> => {
    const peer = await udpSocket();
    sockets.push(peer);
    const sources = new Set<string>();
    const heard: number[] = [];
    peer.on('message', (m, r) => {
      sources.add(`${r.address}:${r.port}`);
      heard.push(performance.now());
      peer.send(m, r.port, r.address);
    });
    return { peer, sources, heard };
  };
  /** A shim in local-credential mode (it signs its allocations: they can move) through tor's SOCKS port at `socks`. */
  const localShim = (socks: number, name: string, more: readonly string[] = []): Started =>
    spawnClient(
      group,
      [...shimArgs({ serverPort: server.tcp, socks }), '--upstream-secret-file', join(dir, 'secret'), '--local-user', 'alice', ...more],
      { ONIONTURN_LOCAL_PASSWORD: 'wonderland' },
      name,
    );

  /** A UDP app sending a numbered datagram every INTERVAL_MS to `port`: the echoes it got, and when. */
  const numberedApp = async (port: number) => {
    const app = await udpSocket();
    sockets.push(app);
    const echoes: { seq: number; at: number }[] = [];
    app.on('message', (m) => echoes.push({ seq: m.readUInt32BE(0), at: performance.now() }));
    let seq = 0;
    const timer = setInterval(() => {
      const b = Buffer.alloc(64);
      b.writeUInt32BE(seq++, 0);
      app.send(b, port, '127.0.0.1');
    }, INTERVAL_MS);
    /** The first echo of a datagram sent after `seqBefore` (the cut), once `shim` carries them again. */
    const echoAfter = (shim: Started, seqBefore: number, cutAt: number, timeoutMs: number): Promise<{ seq: number; at: number }> =>
      waitFor(
        'an echo of a datagram sent after the cut',
        () => {
          if (shim.child.exitCode !== null) throw new Error(`the shim exited: ${shim.output().slice(-1500)}`);
          return echoes.find((e) => e.seq > seqBefore + 1 && e.at > cutAt);
        },
        timeoutMs,
        10,
      );
    return { echoes, sent: () => seq, stop: () => clearInterval(timer), echoAfter };
  };
  /**
   * Between a shim and tor's SOCKS port, a pass-through that can stop connections dead (pause
   * both ends: neither reads), as a relay on their circuit that neither forwards nor closes it.
   */
  const socksGate = async (): Promise<{ conns: GatedConn[]; gatePort: number; closeGate: (shim: Started) => Promise<void> }> => {
    const conns: GatedConn[] = [];
    const gate = createServer((app) => {
      const tor = connect(net.socksPort, '127.0.0.1');
      const c = { app, tor, bytes: 0 };
      conns.push(c);
      app.on('data', (d: Buffer) => {
        c.bytes += d.length;
        tor.write(d);
      });
      tor.on('data', (d: Buffer) => {
        c.bytes += d.length;
        app.write(d);
      });
      for (const [a, b] of [
        [app, tor],
        [tor, app],
      ] as const) {
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
    });
    gate.listen(0, '127.0.0.1');
    await once(gate, 'listening');
    /** Stops `shim` (by its PID) before the pass-through goes (it would dial a closed port), then the gate. */
    const closeGate = async (shim: Started): Promise<void> => {
      if (shim.child.exitCode === null) {
        shim.child.kill('SIGTERM');
        await once(shim.child, 'exit');
      }
      for (const c of conns) {
        c.app.destroy();
        c.tor.destroy();
      }
      gate.close();
    };
    return { conns, gatePort: (gate.address() as { port: number }).port, closeGate };
  };
  /** The open connection through the gate that carried the most over the next `ms`. */
  const busiestOver = async (conns: readonly GatedConn[], ms: number): Promise<GatedConn | undefined> => {
    const start = new Map(conns.map((c) => [c, c.bytes]));
    await sleep(ms);
    return [...conns].filter((c) => !c.app.destroyed).sort((x, y) => y.bytes - (start.get(y) ?? 0) - (x.bytes - (start.get(x) ?? 0)))[0];
  };

  before(async () => {
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
    metricsPort = await freePort();
    [net, server] = await Promise.all([
      startTorNetwork({ timeoutMs: 90_000 }),
      startServer(group, ['--secret-file', secretFile, '--allow-loopback-peers', '--metrics', `127.0.0.1:${metricsPort}`, '--log-level', 'debug']),
    ]);
  });
  after(async () => {
    for (const s of sockets) s.close();
    await group.stopAll();
    await net?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a cut Tor stream: the peer hears the same relay address, the app hears the peer again', async () => {
    // The peer echoes and notes where each datagram came from (the relay address).
    const peer = await udpSocket();
    sockets.push(peer);
    const sources = new Set<string>();
    peer.on('message', (m, r) => {
      sources.add(`${r.address}:${r.port}`);
      peer.send(m, r.port, r.address);
    });
    const forwardPort = await freePort();
    shim = spawnClient(group, [
      ...shimArgs({ serverPort: server.tcp, socks: net.socksPort }),
      '--upstream-secret-file',
      join(dir, 'secret'),
      '--forward',
      `udp://127.0.0.1:${forwardPort}=127.0.0.1:${peer.address().port}`,
    ]);
    await waitFor(
      'the shim to listen',
      () => (shim.child.exitCode !== null ? Promise.reject(new Error(shim.output())) : shim.output().includes('UDP forward listening')),
      15_000,
      50,
    );

    const { echoes, sent, stop, echoAfter } = await numberedApp(forwardPort);
    const controls: { close(): void }[] = [];
    try {
      await waitFor('echoes through the shim and Tor', () => echoes.length >= 20, 60_000, 50);
      assert.equal(sources.size, 1, `one relay address before the cut: ${[...sources].join(', ')}`);
      const relay = [...sources][0];

      const control = await net.control();
      controls.push(control);
      // The stream carrying the datagrams (tor's STREAM_BW, once a second per busy stream), not the
      // one the shim holds ready for the next association: that one is busy for a moment when it
      // is dialed (its probe and 401) and every 20 s when it is replaced, the app's every second.
      const busyAt = new Map<string, number[]>();
      const bw = await net.control();
      controls.push(bw);
      await bw.onEvents(['STREAM_BW'], (ev) => {
        const id = /^STREAM_BW (\S+)/.exec(ev.lines[0] ?? '')?.[1];
        if (id) busyAt.set(id, [...(busyAt.get(id) ?? []), performance.now()]);
      });
      /** Streams to the server busy in at least 3 of the last BUSY_WINDOW_MS's seconds. */
      const busyToServer = async (since: number) =>
        (await control.streams()).filter(
          (s) => s.target.endsWith(`:${server.tcp}`) && s.status === 'SUCCEEDED' && (busyAt.get(s.id) ?? []).filter((t) => t > since).length >= 3,
        );
      let cutAt: number;
      let lastSeqBefore: number;
      let cutCircuit: string;
      {
        const since = performance.now();
        await sleep(BUSY_WINDOW_MS);
        const toServer = await busyToServer(since);
        assert.equal(toServer.length, 1, "the forward's datagrams cross one Tor stream to the server");
        cutCircuit = (toServer[0] as { circuitId: string }).circuitId;
        lastSeqBefore = sent();
        cutAt = performance.now();
        const reply = await control.command(`CLOSESTREAM ${(toServer[0] as { id: string }).id} 1`);
        assert.equal(reply.code, 250);
      }
      const back = await echoAfter(shim, lastSeqBefore, cutAt, 60_000);
      const gapMs = back.at - cutAt;
      console.log(`mobility: the app hears the peer again ${gapMs.toFixed(0)} ms after the Tor stream was cut`);
      // Some more traffic on the new circuit, then the peer's view: still one relay address.
      const n = echoes.length;
      await waitFor('more echoes on the new circuit', () => echoes.length >= n + 20, 10_000, 20);
      assert.deepEqual([...sources], [relay], 'the peer hears the same relay address after the cut');
      const since = performance.now();
      await sleep(BUSY_WINDOW_MS);
      const now = await busyToServer(since);
      assert.equal(now.length, 1, 'one Tor stream to the server carries them again');
      assert.notEqual(now[0]?.circuitId, cutCircuit, 'the new stream runs on another circuit');
      const log = shim.output();
      assert.match(log, /taking the allocation over on a new circuit/);
      assert.match(log, /allocation taken over on a new circuit/);
      assert.doesNotMatch(log, /datagram flow closed/);
    } finally {
      stop();
      for (const c of controls) c.close();
    }
  });

  test('a stalled Tor stream and the one held ready (their bytes stop, nothing closes them): the shim takes the allocation over on a fresh circuit, the call goes on', async () => {
    const { conns, gatePort, closeGate } = await socksGate();
    const { peer, sources, heard } = await echoPeer();
    const statusPort = await freePort();
    const local = localShim(gatePort, 'onionturn client (stalled stream)', ['--status', `127.0.0.1:${statusPort}`]);
    try {
      const port = await shimPort(local);
      const run = runUclient(group, {
        server: { host: '127.0.0.1', port },
        peer: { host: '127.0.0.1', port: peer.address().port },
        username: 'alice',
        password: 'wonderland',
        tcp: false,
        noRtcp: true,
        messages: 800,
        intervalMs: 20,
        timeoutMs: 60_000,
      });
      run.catch(() => undefined); // awaited below; a failure before that must not go unhandled
      await waitFor('the call to carry traffic', () => heard.length >= 20, 30_000, 20);
      // The call's stream is the busiest connection over the next 2 s (the one held ready is idle
      // since its 401; dialed as the call started, it is replaced only after 20 s, well after the
      // take-over below starts on it).
      const busiest = await busiestOver(conns, 2000);
      assert.ok(busiest, 'the call has its Tor stream');
      // The stream held ready stalls with it (a relay both circuits cross, such as a shared
      // guard): the take-over's first stream is that one, its Refresh goes unanswered, and a
      // fresh stream must take over after MOVE_ANSWER_TIMEOUT_MS.
      const stalled = conns.filter((c) => !c.app.destroyed && !c.tor.destroyed);
      assert.ok(stalled.length >= 2, `the call's stream and the one held ready: ${stalled.length} open`);
      for (const c of stalled) {
        c.app.pause();
        c.tor.pause();
      }
      const stalledAt = performance.now();
      const r = await run;
      const moved = /upstream stream stalled: nothing acknowledged for ([\d.]+) s/.exec(local.output());
      assert.ok(moved, `the shim gave the stalled stream up:\n${local.output().slice(-2000)}`);
      // The peer heard the call again, from the same relay address, once the allocation moved.
      const after = heard.filter((t) => t > stalledAt + 1000 * Number(moved[1]));
      console.log(
        `stalled stream: given up after ${moved[1]} s with nothing acknowledged; the peer heard the call again ${after[0] === undefined ? '(never)' : `${((after[0] - stalledAt) / 1000).toFixed(1)} s after the stall`}, ${after.length} datagrams; uclient sent ${r.sent}, received ${r.received}`,
      );
      assert.ok(
        after.length >= 50,
        `the peer heard the call again after the take-over: ${after.length}\n${local.output().slice(-1500)}\n--- server ---\n${serverMobility()}`,
      );
      assert.equal(sources.size, 1, `the peer heard one relay address: ${[...sources].join(', ')}`);
      // The first take-over went on the held stream, stalled too, and was given up for a fresh one.
      assert.match(local.output(), /the take-over Refresh went unanswered for 5 s: the take-over's new stream is gone too/);
      assert.match(local.output(), /allocation taken over on a new circuit/);
      const metrics = await (await fetch(`http://127.0.0.1:${statusPort}/metrics`)).text();
      assert.match(metrics, /^onionturn_client_delay_feedback_total\{event="stall-moved"\} 1$/m);
      assert.match(metrics, /^onionturn_client_streams_moved_total 1$/m);
    } finally {
      await closeGate(local);
    }
  });

  test("a forward's cut Tor stream while the one held ready is stalled: the take-over's Refresh goes unanswered there, a fresh stream takes the allocation over", async () => {
    const { conns, gatePort, closeGate } = await socksGate();
    const { peer, sources } = await echoPeer();
    const forwardPort = await freePort();
    const fwd = spawnClient(
      group,
      [
        ...shimArgs({ serverPort: server.tcp, socks: gatePort }),
        '--upstream-secret-file',
        join(dir, 'secret'),
        '--forward',
        `udp://127.0.0.1:${forwardPort}=127.0.0.1:${peer.address().port}`,
      ],
      {},
      'onionturn client (forward, stalled held stream)',
    );
    const { echoes, sent, stop, echoAfter } = await numberedApp(forwardPort);
    try {
      await waitFor(
        'echoes through the forward',
        () => {
          if (fwd.child.exitCode !== null) throw new Error(`the shim exited: ${fwd.output().slice(-1500)}`);
          return echoes.length >= 20;
        },
        60_000,
        50,
      );
      const busiest = await busiestOver(conns, 2000);
      assert.ok(busiest, "the forward's Tor stream");
      const held = conns.filter((c) => c !== busiest && !c.app.destroyed && !c.tor.destroyed);
      assert.ok(held.length >= 1, 'a stream is held ready');
      for (const c of held) {
        c.app.pause();
        c.tor.pause();
      }
      const lastSeqBefore = sent();
      const cutAt = performance.now();
      busiest.app.destroy();
      const back = await echoAfter(fwd, lastSeqBefore, cutAt, 30_000);
      const gapMs = back.at - cutAt;
      console.log(`forward take-over past a stalled held stream: the app hears the peer again ${(gapMs / 1000).toFixed(1)} s after the cut`);
      // Given up after MOVE_ANSWER_TIMEOUT_MS (5 s), then a fresh circuit (without the deadline:
      // until the server closed the stalled stream, 28 s).
      assert.ok(gapMs < 15_000, `the forward is heard again within 15 s of the cut: ${(gapMs / 1000).toFixed(1)} s`);
      assert.equal(sources.size, 1, `the peer heard one relay address: ${[...sources].join(', ')}`);
      const log = fwd.output();
      assert.match(log, /the take-over's new stream is gone too \(the take-over Refresh went unanswered for 5 s\): another circuit/);
      assert.match(log, /datagram flow: allocation taken over on a new circuit/);
    } finally {
      stop();
      await closeGate(fwd);
    }
  });

  // heldToo: the stream the shim holds ready dies with the call's, cut right after them (a relay
  // every circuit of the client crosses failed: its guard): the take-over starts on it, finds it
  // gone, and takes the allocation over on a fresh circuit instead of ending the flow.
  for (const { tcp, heldToo } of [{ tcp: false }, { tcp: true }, { tcp: false, heldToo: true }]) {
    const what = heldToo ? 'the cut stream and the one held ready are replaced' : 'the cut stream is replaced';
    test(`a TURN app over ${tcp ? 'TCP' : 'UDP'} in local-credential mode (coturn's uclient): ${what}, the call goes on`, async () => {
      const { peer, sources, heard } = await echoPeer();
      const local = localShim(net.socksPort, 'onionturn client (local credentials)');
      const port = await shimPort(local);
      const control = await net.control();
      // Which streams carry traffic (tor's STREAM_BW, once a second per busy stream): the cut takes
      // the call's streams, as a failed circuit would, not the stream the shim holds ready (on a
      // circuit of its own, idle since its 401), which a take-over may start on.
      const busyAt = new Map<string, number>();
      const bw = await net.control();
      await bw.onEvents(['STREAM_BW'], (ev) => {
        const id = /^STREAM_BW (\S+)/.exec(ev.lines[0] ?? '')?.[1];
        if (id) busyAt.set(id, performance.now());
      });
      try {
        const toServer = async () => (await control.streams()).filter((s) => s.target.endsWith(`:${server.tcp}`) && s.status === 'SUCCEEDED');
        const before = new Set((await toServer()).map((s) => s.id));
        const run = runUclient(group, {
          server: { host: '127.0.0.1', port },
          peer: { host: '127.0.0.1', port: peer.address().port },
          username: 'alice',
          password: 'wonderland',
          tcp,
          noRtcp: true,
          messages: 400,
          intervalMs: 20,
          timeoutMs: 60_000,
        });
        await waitFor('the call to carry traffic', () => heard.length >= 20, 30_000, 20);
        // uclient may open more than one flow (one Tor stream each): every one of them is cut.
        const quietSince = performance.now();
        await sleep(2500);
        const victims = (await toServer()).filter((x) => !before.has(x.id) && (busyAt.get(x.id) ?? 0) > quietSince);
        assert.ok(victims.length >= 1, 'the call has its Tor stream');
        const negotiatedBefore = await negotiated();
        const cutAt = performance.now();
        for (const v of victims) assert.equal((await control.command(`CLOSESTREAM ${v.id} 1`)).code, 250);
        if (heldToo) {
          const held = (await toServer()).filter((x) => !before.has(x.id) && !victims.some((v) => v.id === x.id));
          assert.ok(held.length >= 1, 'the shim holds a stream ready');
          for (const h of held) assert.equal((await control.command(`CLOSESTREAM ${h.id} 1`)).code, 250);
        }
        const r = await run;
        // Datagrams already inside Tor still arrive just after the cut: the gap is the longest
        // silence the peer heard after it (the app sends every 20 ms).
        const after = heard.filter((t) => t > cutAt);
        assert.ok(after.length > 0, `the peer heard nothing after the cut:\n${local.output().slice(-1500)}\n--- server ---\n${serverMobility()}`);
        let silence = 0;
        let back = 0;
        after.forEach((t, i) => {
          const d = t - (i === 0 ? cutAt : (after[i - 1] as number));
          if (d > silence) [silence, back] = [d, t];
        });
        const moved = [...local.output().matchAll(/"gapMs":(\d+)/g)].map((m) => Number(m[1]));
        console.log(
          `mobility (${tcp ? 'TCP' : 'UDP'} app, local mode): longest silence the peer heard after the cut ${silence.toFixed(0)} ms (ending ${(back - cutAt).toFixed(0)} ms after it); shim: stream lost to allocation taken over ${moved.join(', ')} ms; uclient sent ${r.sent}, received ${r.received}`,
        );
        assert.equal(sources.size, 1, `the peer heard one relay address: ${[...sources].join(', ')}`);
        assert.equal(r.sent, 400);
        assert.ok(
          (r.received ?? 0) >= 300,
          `most of the call went through: ${r.received}/400\n${local.output().slice(-1500)}\n--- server ---\n${serverMobility()}`,
        );
        assert.match(local.output(), /allocation taken over on a new circuit/);
        // The take-over started on the stream held ready (open already, its 401 signs the Refresh).
        assert.match(local.output(), /"message":"flow: new Tor stream for the allocation"[^\n]*"ready":true/);
        if (heldToo) assert.match(local.output(), /new stream is gone too: another circuit/, 'the take-over found the held stream gone and dialed again');
        if (!tcp) {
          // The take-over Refresh offered the extension and the server echoed it: the new stream
          // has reports and the cap again (TCP apps' flows never offer it).
          // (The victims may include the shim's ready stream, which carries no allocation.)
          const again = (await negotiated()) - negotiatedBefore;
          assert.ok(moved.length >= 1 && again >= moved.length, `the delay extension negotiated again on ${again} of ${moved.length} taken-over allocation(s)`);
        }
      } finally {
        control.close();
        bw.close();
      }
    });
  }

  test('the server restarted: mobility fails and the TCP app connection to the shim is closed at once', async () => {
    const port = await freePort();
    const args = ['--secret-file', join(dir, 'secret'), '--allow-loopback-peers'];
    const first = await startServer(group, args, {}, { listen: [`tcp://127.0.0.1:${port}`] });
    const local = spawnClient(
      group,
      [...shimArgs({ serverPort: port, socks: net.socksPort }), '--upstream-secret-file', join(dir, 'secret'), '--local-user', 'alice'],
      { ONIONTURN_LOCAL_PASSWORD: 'wonderland' },
      'onionturn client (restart)',
    );
    const shimTcp = await shimPort(local);
    // A TURN-over-TCP app holding an allocation through the shim.
    const sock = connect(shimTcp, '127.0.0.1');
    await once(sock, 'connect');
    sock.on('error', () => {});
    let closedAt = 0;
    sock.on('close', () => (closedAt = performance.now()));
    const got: StunMessage[] = [];
    const framer = new StreamFramer((f) => {
      const d = decodeMessage(Buffer.from(f));
      if (d.ok) got.push(d.value);
    });
    sock.on('data', (c: Buffer) => framer.push(c));
    const allocate = (nonce?: string): Buffer => {
      const b = new MessageBuilder(Method.Allocate, MessageClass.Request).add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 });
      if (nonce === undefined) return b.build();
      b.add(AttributeType.Username, { kind: 'text', text: 'alice' })
        .add(AttributeType.Realm, { kind: 'text', text: readText(got[0] as StunMessage, AttributeType.Realm) ?? '' })
        .add(AttributeType.Nonce, { kind: 'text', text: nonce });
      return b.build({ integrityKey: longTermKey('alice', readText(got[0] as StunMessage, AttributeType.Realm) ?? '', 'wonderland') });
    };
    sock.write(allocate());
    await waitFor('the local 401', () => got.length >= 1, 5000, 10);
    sock.write(allocate(readText(got[0] as StunMessage, AttributeType.Nonce)));
    await waitFor('the allocation through Tor', () => got.length >= 2, 30_000, 10);
    assert.equal(got[1]?.messageClass, MessageClass.SuccessResponse);

    // The server goes away and comes back on the same port: the allocation is gone with it.
    const killedAt = performance.now();
    first.process.child.kill('SIGTERM');
    await once(first.process.child, 'exit');
    await startServer(group, args, {}, { listen: [`tcp://127.0.0.1:${port}`] });
    await waitFor('the app connection to be closed', () => closedAt > 0, 30_000, 10);
    const log = local.output();
    assert.match(log, /mobility failed/);
    console.log(
      `mobility after a server restart: the app's TCP connection closed ${(closedAt - killedAt).toFixed(0)} ms after the server stopped (${/mobility failed: [^"]*/.exec(log)?.[0]})`,
    );
  });
});
