// Flow setup with and without the ready stream (issue 14, deliverable 5): on a shaped private Tor
// network, two shims in front of one server, one with `--no-ready-stream`. After a first flow
// (an app became active), each new flow's unauthenticated Allocate is timed from the app's
// connect to the server's 401: with a stream held ready it needs no circuit of its own.
// --local: the shims in local-credential mode (upstream credentials from the server's credential
// endpoint, through Tor); each new flow's whole Allocate is timed, from the app's connect through
// the shim's own 401 to the allocation (the held stream brings the server's 401 and, fetched
// ahead, the flow's upstream credential).
//   npm run bench:setup -- [--profile tor-typical] [--flows 8] [--gap-ms 2000] [--local]
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { prepare } from './prepare.mjs';

const opts = { profile: 'tor-typical', flows: 8, gapMs: 2000, local: false };
for (let i = 2; i < process.argv.length; i += 2) {
  const [flag, value] = [process.argv[i], process.argv[i + 1]];
  if (flag === '--local') {
    opts.local = true;
    i--;
  } else if (flag === '--profile') opts.profile = value;
  else if (flag === '--flows') opts.flows = Number(value);
  else if (flag === '--gap-ms') opts.gapMs = Number(value);
  else {
    console.log('usage: npm run bench:setup -- [--profile NAME] [--flows N] [--gap-ms MS] [--local]');
    process.exit(2);
  }
}
await prepare();
const { MessageBuilder, MessageClass, Method, AttributeType, StreamFramer, decodeMessage, longTermKey, readText } = await import('@onionturn/protocol');
const { labProfile, median, sleep, startBridge } = await import('@onionturn/testkit');

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

const profile = labProfile(opts.profile);
const say = (m) => console.log(`bench:setup: ${m}`);
say(`profile ${profile.name}: ${profile.description}`);
const bridge = await startBridge({ profile, progress: say });
try {
  const local = opts.local ? { localCredentials: LOCAL } : {};
  const time = opts.local ? timeLocalAllocate : timeAllocate;
  const withReady = opts.local ? await bridge.addShim(bridge.server, local) : bridge.shim;
  const without = await bridge.addShim(bridge.server, { ...local, args: ['--no-ready-stream'] });
  const rows = [];
  for (const [name, shim] of [
    ['ready stream', withReady],
    ['--no-ready-stream', without],
  ]) {
    const first = await time(shim.port);
    await sleep(opts.gapMs);
    const next = [];
    for (let k = 0; k < opts.flows; k++) {
      next.push(await time(shim.port));
      await sleep(opts.gapMs);
    }
    rows.push({ name, first, next });
  }
  const circuit = await bridge.tor.measureCircuitRtt(3, false);
  console.log(
    `\nbench:setup profile ${profile.name}: circuit RTT (bare stream echo) ${circuit.toFixed(0)} ms; ${opts.local ? 'local mode: Allocate to allocation' : 'Allocate to 401'} through the shim, ms`,
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
  await bridge.stop();
}
