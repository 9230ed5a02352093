// Flow setup with and without the ready stream (issue 14, deliverable 5): on a shaped private Tor
// network, two shims in front of one server, one with `--no-ready-stream`. After a first flow
// (an app became active), each new flow's unauthenticated Allocate is timed from the app's
// connect to the server's 401: with a stream held ready it needs no circuit of its own.
//   npm run bench:setup -- [--profile tor-typical] [--flows 8] [--gap-ms 2000]
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { prepare } from './prepare.mjs';

const opts = { profile: 'tor-typical', flows: 8, gapMs: 2000 };
for (let i = 2; i < process.argv.length; i += 2) {
  const [flag, value] = [process.argv[i], process.argv[i + 1]];
  if (flag === '--profile') opts.profile = value;
  else if (flag === '--flows') opts.flows = Number(value);
  else if (flag === '--gap-ms') opts.gapMs = Number(value);
  else {
    console.log('usage: npm run bench:setup -- [--profile NAME] [--flows N] [--gap-ms MS]');
    process.exit(2);
  }
}
await prepare();
const { MessageBuilder, MessageClass, Method, AttributeType } = await import('@onionturn/protocol');
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

const profile = labProfile(opts.profile);
const say = (m) => console.log(`bench:setup: ${m}`);
say(`profile ${profile.name}: ${profile.description}`);
const bridge = await startBridge({ profile, progress: say });
try {
  const without = await bridge.addShim(bridge.server, { args: ['--no-ready-stream'] });
  const rows = [];
  for (const [name, shim] of [
    ['ready stream', bridge.shim],
    ['--no-ready-stream', without],
  ]) {
    const first = await timeAllocate(shim.port);
    await sleep(opts.gapMs);
    const next = [];
    for (let k = 0; k < opts.flows; k++) {
      next.push(await timeAllocate(shim.port));
      await sleep(opts.gapMs);
    }
    rows.push({ name, first, next });
  }
  const circuit = await bridge.tor.measureCircuitRtt(3, false);
  console.log(`\nbench:setup profile ${profile.name}: circuit RTT (bare stream echo) ${circuit.toFixed(0)} ms; Allocate to 401 through the shim, ms`);
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
