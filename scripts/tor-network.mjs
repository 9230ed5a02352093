#!/usr/bin/env node
// Starts the private Tor test network on loopback and keeps it running until Ctrl-C / SIGTERM.
//   node scripts/tor-network.mjs [--onion PORT] [--json]
//     --onion PORT  also run an onion service mapping PORT to 127.0.0.1:PORT
//     --json        print one JSON line with the ports, onion address and PIDs once ready
// Builds the workspace first when the lab's output is missing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const args = process.argv.slice(2);
const json = args.includes('--json');
let onionPort;
const onionAt = args.indexOf('--onion');
if (onionAt >= 0) {
  onionPort = Number(args[onionAt + 1]);
  if (!Number.isInteger(onionPort) || onionPort < 1 || onionPort > 65535) {
    console.error('tor-network: --onion needs a port number (1-65535)');
    process.exit(2);
  }
}

if (!existsSync(join(root, 'packages', 'lab', 'dist', 'src', 'index.js'))) {
  const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const { startTorNetwork } = await import('@onionturn/lab');

const log = (message) => {
  if (!json) console.log(`tor-network: ${message}`);
};
let network;
let stopping = false;
const abort = new globalThis.AbortController();
async function shutdown() {
  if (stopping) return;
  stopping = true;
  log('stopping');
  // While starting, the abort makes startTorNetwork stop what it started and reject (below).
  abort.abort();
  if (network) {
    await network.stop();
    process.exit(0);
  }
}
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());

try {
  network = await startTorNetwork({ progress: log, signal: abort.signal, ...(onionPort === undefined ? {} : { onion: { targetPort: onionPort } }) });
} catch (err) {
  if (stopping) process.exit(0);
  console.error(`tor-network: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
if (stopping) {
  await network.stop();
  process.exit(0);
}
const info = {
  socks: `127.0.0.1:${network.socksPort}`,
  control: `127.0.0.1:${network.controlPort}`,
  onion: network.onion ? `${network.onion.hostname}:${network.onion.port}` : undefined,
  pids: network.pids,
  dataDir: network.dataDir,
  timings: network.timings,
};
if (json) {
  console.log(JSON.stringify(info));
} else {
  console.log(`SOCKS5   ${info.socks}`);
  console.log(`control  ${info.control}  (AUTHENTICATE "")`);
  if (info.onion) console.log(`onion    ${info.onion}  -> 127.0.0.1:${network.onion.port}`);
  console.log(`pids     ${info.pids.join(' ')}`);
  console.log(`ready in ${network.timings.firstStreamMs} ms${network.timings.onionMs ? ` (onion ${network.timings.onionMs} ms)` : ''}; Ctrl-C stops it`);
}
