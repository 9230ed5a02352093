#!/usr/bin/env node
// `npm start`: the whole bridge on this machine, for a newcomer. Installs and builds what is
// missing, starts a private Tor network (real tor processes on 127.0.0.1), `onionturn server`
// and `onionturn client`, proves it with one WebRTC call in headless Chromium, then keeps
// running and prints what to paste into a WebRTC app. Ctrl-C stops everything it started. The
// shim keeps its port (3478 when free) and its local password (the one `onionturn client` keeps
// in ~/.config/onionturn/local-password) from run to run, so an app configured once keeps working.
//   --profile NAME   shape the private Tor network like a real one (packages/lab lab profiles):
//                    ideal (default), tor-typical, tor-congested, tor-onion
import { ensureDebianPackages, prepare } from './prepare.mjs';

const argv = process.argv.slice(2);
let profileName = 'ideal';
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--profile') profileName = argv[++i];
  else if (argv[i].startsWith('--profile=')) profileName = argv[i].slice('--profile='.length);
  else {
    console.error(`start: unknown argument ${argv[i]} (usage: npm start -- [--profile NAME])`);
    process.exit(2);
  }
}

await prepare('start');
// tor (and tor-gencert) for the private network, chromium for the test call.
await ensureDebianPackages('start', ['tor', 'torGencert', 'chromium']);
const { CallBrowser, STABLE_SHIM_PORTS, chooseStablePort, freePort, labProfile, median, portFree, startBridge } = await import('@onionturn/lab');
let profile;
try {
  profile = labProfile(profileName ?? '');
} catch (err) {
  console.error(`start: ${err.message}`);
  process.exit(2);
}
if (profile.namespace) {
  // npm start serves the host's browser, so it cannot move into the profile's namespace, and the
  // congested relay's namespaces are made only from inside one: that part is left out here.
  console.log(
    `start: profile ${profile.name} is meant for a network namespace with small TCP buffers${profile.bottleneck ? ' and a congested relay behind a router namespace' : ''} (bench:call runs it there); here it runs on the host's loopback${profile.bottleneck ? ', without the congested relay' : ', with more delay under load'}`,
  );
  profile = { ...profile, bottleneck: undefined, secondClient: false };
}

const t0 = Date.now();
const say = (m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${m}`);
let bridge;
let browser;
let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  say('stopping everything npm start started');
  await browser?.close().catch(() => undefined);
  const pids = bridge ? [bridge.server.process.pid, bridge.shim.process.pid, ...bridge.tor.pids] : [];
  await bridge?.stop();
  say(
    bridge
      ? `stopped: onionturn client, onionturn server and the private Tor network (PIDs ${pids.join(' ')}); nothing npm start started is running`
      : 'stopped: nothing was running yet',
  );
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  // The same port every run, so an app configured once keeps working.
  const taken = new Set();
  for (const p of STABLE_SHIM_PORTS) if (!(await portFree(p))) taken.add(p);
  const spare = taken.size === STABLE_SHIM_PORTS.length ? await freePort() : 0;
  const shimPort = chooseStablePort(STABLE_SHIM_PORTS, taken, () => spare);
  say(shimPort.line);
  // Local-credential mode, the password the CLI keeps: apps use the same credentials every run.
  bridge = await startBridge({ profile, progress: say, port: shimPort.port, localCredentials: { user: 'onionturn' } });
  const local = bridge.shim.local;
  if (!local) throw new Error('onionturn client printed no local credentials');
  const urls = [`turn:127.0.0.1:${bridge.shim.port}?transport=udp`, `turn:127.0.0.1:${bridge.shim.port}?transport=tcp`];
  say('one test call: two relay-only Chromium peers through shim -> Tor -> server');
  browser = await CallBrowser.start({ ownSignals: true });
  const r = await browser.call({
    iceServers: [{ urls: urls[0], username: local.username, credential: local.password }],
    media: true,
    timeoutMs: profile.link ? 60_000 : 20_000,
  });
  await browser.close();
  browser = undefined;
  if (r.error || r.echoed === 0) throw new Error(`the test call failed: ${r.error ?? 'no message came back'}`);
  say(
    `test call OK: setup ${r.setupMs.toFixed(0)} ms, data-channel RTT median ${median(r.rttMs).toFixed(1)} ms, ` +
      `${r.framesDecoded.video} video frames decoded, path ${r.pairs.map((p) => `${p.localType}/${p.relayProtocol}`).join(' + ')}`,
  );

  const iceServers = [{ urls, username: local.username, credential: local.password }];
  console.log(`
ready. The bridge runs on this machine:
  WebRTC app --TURN--> onionturn client 127.0.0.1:${bridge.shim.port} --SOCKS 127.0.0.1:${bridge.tor.socksPort}--> private Tor network
    --exit--> onionturn server 127.0.0.1:${bridge.server.port} --UDP--> peers
  Tor network profile: ${profile.name} (${profile.description})
  server metrics:      http://127.0.0.1:${bridge.server.metricsPort}/metrics
  server credentials:  curl http://127.0.0.1:${bridge.server.credentialPort}/credentials
                       (REST credentials of the server and its TURN URIs, ${bridge.server.uris.join(' ')};
                       the shim fetches its upstream credentials there, through Tor)

Paste into a WebRTC app on this machine (the same port and password next time; relay-only shows the path):
  new RTCPeerConnection({ iceServers: ${JSON.stringify(iceServers)}, iceTransportPolicy: 'relay' })
The password is kept in ~/.config/onionturn/local-password ($XDG_CONFIG_HOME/onionturn/... when set),
as \`onionturn client\` keeps it.

This is a private test network on 127.0.0.1. Both peers of a call use this one server, so each
one's peer is the other's relay address, which the server allows (and relays inside itself)
while every other loopback and private address stays denied. For a real deployment see README
"Deploy the exit side" and "Use it".
Ctrl-C stops everything.`);
} catch (err) {
  console.error(`start: ${err instanceof Error ? err.message : String(err)}`);
  await stop(1);
}
