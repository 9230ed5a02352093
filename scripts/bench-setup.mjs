// Flow setup with and without the ready stream (issue 14, deliverable 5): on a shaped private Tor
// network, two shims in front of one server, one with `--no-ready-stream`. After a first flow
// (an app became active), each new flow's unauthenticated Allocate is timed from the app's
// connect to the server's 401: with a stream held ready it needs no circuit of its own.
// --local: the shims in local-credential mode (upstream credentials from the server's credential
// endpoint, through Tor); each new flow's whole Allocate is timed, from the app's connect through
// the shim's own 401 to the allocation (the held stream brings the server's 401 and, fetched
// ahead, the flow's upstream credential).
// --forward: UDP that arrives without TURN; each shim (local mode) has a --forward to a UDP echo
// server beyond the exit, and each new local source's first datagram is timed until its echo came
// back (the association's stream, its Allocate, permission and channel, then the datagram).
//   npm run bench:setup -- [--profile tor-typical] [--flows 8] [--gap-ms 2000] [--local | --forward]
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { prepare } from './prepare.mjs';

const opts = { profile: 'tor-typical', flows: 8, gapMs: 2000, local: false, forward: false };
for (let i = 2; i < process.argv.length; i += 2) {
  const [flag, value] = [process.argv[i], process.argv[i + 1]];
  if (flag === '--local' || flag === '--forward') {
    opts.local = true;
    if (flag === '--forward') opts.forward = true;
    i--;
  } else if (flag === '--profile') opts.profile = value;
  else if (flag === '--flows') opts.flows = Number(value);
  else if (flag === '--gap-ms') opts.gapMs = Number(value);
  else {
    console.log('usage: npm run bench:setup -- [--profile NAME] [--flows N] [--gap-ms MS] [--local | --forward]');
    process.exit(2);
  }
}
await prepare();
const { MessageBuilder, MessageClass, Method, AttributeType, StreamFramer, decodeMessage, longTermKey, readText } = await import('@onionturn/protocol');
const { freePort, labProfile, median, sleep, startBridge } = await import('@onionturn/testkit');

const allocate = new MessageBuilder(Method.Allocate, MessageClass.Request)
  .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
  .build();

/** ms from connect to the first 20 bytes of an answer (the server's 401), over TURN-over-TCP to the shim. */
function timeAllocate(port) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const sock = connect(port, '127.0.0.1', () => sock.write(allocate));
    let got = 0;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no answer in 30 s'));
    }, 30_000);
    sock.on('data', (b) => {
      got += b.length;
      if (got >= 20) {
        clearTimeout(timer);
        sock.destroy();
        resolve(performance.now() - t0);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

const LOCAL = { user: 'bench', password: 'bench-local-password' };

/**
 * Local mode: ms from connect to the allocation: a bare Allocate (the shim's own 401, no Tor), then
 * the signed one, answered once the shim has allocated upstream.
 */
function timeLocalAllocate(port) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const sock = connect(port, '127.0.0.1', () => sock.write(allocate));
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no allocation in 30 s'));
    }, 30_000);
    const done = (err, ms) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(ms);
    };
    const framer = new StreamFramer((frame) => {
      const d = decodeMessage(Buffer.from(frame));
      if (!d.ok) return done(new Error('the shim answered something that is not STUN'));
      const m = d.value;
      if (m.messageClass === MessageClass.SuccessResponse) return done(undefined, performance.now() - t0);
      const realm = readText(m, AttributeType.Realm);
      const nonce = readText(m, AttributeType.Nonce);
      if (realm === undefined || nonce === undefined) return done(new Error('the Allocate was refused'));
      sock.write(
        new MessageBuilder(Method.Allocate, MessageClass.Request)
          .add(AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 })
          .add(AttributeType.Username, { kind: 'text', text: LOCAL.user })
          .add(AttributeType.Realm, { kind: 'text', text: realm })
          .add(AttributeType.Nonce, { kind: 'text', text: nonce })
          .build({ integrityKey: longTermKey(LOCAL.user, realm, LOCAL.password) }),
      );
    });
    sock.on('data', (b) => framer.push(b));
    sock.on('error', (e) => done(e));
  });
}

/** --forward: ms from a new local source's first datagram into the forward to its echo. */
async function timeForward(port) {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  try {
    const t0 = performance.now();
    const back = once(s, 'message');
    s.send('first', port, '127.0.0.1');
    // The association holds what comes before its allocation: one datagram is enough; again after 5 s in case.
    const again = setInterval(() => s.send('first', port, '127.0.0.1'), 5000);
    const timer = sleep(30_000).then(() => {
      throw new Error('no echo in 30 s');
    });
    try {
      await Promise.race([back, timer]);
    } finally {
      clearInterval(again);
    }
    return performance.now() - t0;
  } finally {
    s.close();
  }
}

const profile = labProfile(opts.profile);
const say = (m) => console.log(`bench:setup: ${m}`);
say(`profile ${profile.name}: ${profile.description}`);
const bridge = await startBridge({ profile, progress: say, ...(opts.forward ? { server: { allowLoopbackPeers: true } } : {}) });
const echo = createSocket('udp4');
echo.on('message', (m, r) => echo.send(m, r.port, r.address));
echo.bind(0, '127.0.0.1');
await once(echo, 'listening');
try {
  const local = opts.local ? { localCredentials: LOCAL } : {};
  const time = opts.forward ? timeForward : opts.local ? timeLocalAllocate : timeAllocate;
  const forwardPorts = [await freePort(), await freePort()];
  const forwardArgs = (k) => (opts.forward ? ['--forward', `udp://127.0.0.1:${forwardPorts[k]}=127.0.0.1:${echo.address().port}`] : []);
  const withReady = opts.local ? await bridge.addShim(bridge.server, { ...local, args: forwardArgs(0) }) : bridge.shim;
  const without = await bridge.addShim(bridge.server, { ...local, args: ['--no-ready-stream', ...forwardArgs(1)] });
  const rows = [];
  for (const [name, shim, k] of [
    ['ready stream', withReady, 0],
    ['--no-ready-stream', without, 1],
  ]) {
    const at = opts.forward ? forwardPorts[k] : shim.port;
    const first = await time(at);
    await sleep(opts.gapMs);
    const next = [];
    for (let k = 0; k < opts.flows; k++) {
      next.push(await time(at));
      await sleep(opts.gapMs);
    }
    rows.push({ name, first, next });
  }
  const circuit = await bridge.tor.measureCircuitRtt(3, false);
  console.log(
    `\nbench:setup profile ${profile.name}: circuit RTT (bare stream echo) ${circuit.toFixed(0)} ms; ${opts.forward ? "a new --forward source's first datagram to its echo" : opts.local ? 'local mode: Allocate to allocation' : 'Allocate to 401'} through the shim, ms`,
  );
  console.log(`${'shim'.padStart(18)} ${'first flow'.padStart(10)} ${'next p50'.padStart(9)} ${'next max'.padStart(9)}  next flows`);
  for (const r of rows) {
    console.log(
      `${r.name.padStart(18)} ${r.first.toFixed(0).padStart(10)} ${median(r.next).toFixed(0).padStart(9)} ${Math.max(...r.next)
        .toFixed(0)
        .padStart(9)}  ${r.next.map((x) => x.toFixed(0)).join(' ')}`,
    );
  }
} finally {
  echo.close();
  await bridge.stop();
}
