#!/usr/bin/env node
// What a stopped Onionbalance backend costs (docs/onionbalance.md, "Known limits"). A
// measurement, not a test: the setup of packages/cli/test/onionbalance.interop.test.ts (two
// onionturn servers, each behind its own tor as an Onionbalance instance, Debian's onionbalance
// --is-testnet publishing the frontend on the private Tor network; onionbalance-pair.ts), then
// backend B's tor stops and, for --seconds, TURN Allocates go to the frontend address: 4 on the
// client that used B (same@), then a fresh client (NEWNYM) every 5 s (fresh@), until onionbalance
// has published a descriptor without B ("We got N intros from 1 instances") and 5 s more.
// Each result: label@seconds-after-stop:backend:ms, or FAILED(reason).
//   node scripts/onionbalance-failover.mjs [--seconds N] [--initial-delay N]
//     --seconds N        how long to keep trying after B stopped (default 60, 10-600)
//     --initial-delay N  onionbalance's first-round pause (default 5; its own constant is 45)
// Exit 0 when every allocation after the stop succeeded at A, 1 otherwise. Everything runs on
// loopback and is stopped by PID at the end (also on Ctrl-C).
import { prepare } from './prepare.mjs';

function parseArgs(argv) {
  const o = { seconds: 60, initialDelay: 5 };
  const bad = (m) => {
    console.error(`onionbalance-failover: ${m}`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => inline ?? argv[++i];
    if (flag === '--seconds') o.seconds = Number(value());
    else if (flag === '--initial-delay') o.initialDelay = Number(value());
    else if (flag === '--help' || flag === '-h') {
      console.log('usage: node scripts/onionbalance-failover.mjs [--seconds N] [--initial-delay N]');
      process.exit(0);
    } else bad(`unknown argument ${argv[i]} (try --help)`);
  }
  if (!(Number.isInteger(o.seconds) && o.seconds >= 10 && o.seconds <= 600)) bad('--seconds must be whole seconds from 10 to 600');
  if (!(Number.isInteger(o.initialDelay) && o.initialDelay >= 0 && o.initialDelay <= 600)) bad('--initial-delay must be whole seconds from 0 to 600');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
await prepare('onionbalance-failover');
const { sleep } = await import('@onionturn/testkit');
const { HOST_B, OnionbalancePair } = await import('../packages/cli/dist/test/onionbalance-pair.js');

const t0 = Date.now();
const say = (m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}`);
const pair = new OnionbalancePair();
let stopping;
const stop = () => (stopping ??= pair.stop(say));
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => void stop().then(() => process.exit(130)));

let failures = 0;
try {
  await pair.start({ initialDelaySeconds: opts.initialDelay, log: say });
  const tReach = Date.now();
  const first = await pair.firstAllocation(300_000);
  say(`first allocation through the frontend after ${Date.now() - tReach} ms of trying (backend ${first.relayHost})`);
  const both = await pair.bothBackends(first.relayHost, 240_000);
  if (both.seen.length < 2) throw new Error(`only ${both.seen.join()} served within 240 s (last error: ${both.lastError})`);
  say(`both backends served; allocation times ${both.times.join(', ')} ms`);

  // From here on, a line of onionbalance's saying it built a descriptor from one instance only.
  let republishedAt;
  const watch = (chunk) => {
    if (republishedAt === undefined && /We got \d+ intros from 1 instances/.test(chunk.toString('utf8'))) republishedAt = Date.now();
  };
  pair.onionbalance.child.stdout?.on('data', watch);
  pair.onionbalance.child.stderr?.on('data', watch);
  await pair.stopBackendB();
  const tStop = Date.now();
  say('backend B tor stopped');
  const results = [];
  const attempt = async (label) => {
    const when = () => `${label}@${Math.round((Date.now() - tStop) / 1000)}s`;
    try {
      const a = await pair.allocate();
      if (a.relayHost === HOST_B) failures++;
      results.push(`${when()}:${a.relayHost === HOST_B ? 'B' : 'A'}:${a.ms}ms`);
    } catch (err) {
      failures++;
      results.push(`${when()}:FAILED(${err instanceof Error ? err.message : String(err)})`);
    }
  };
  for (let i = 0; i < 4; i++) await attempt('same');
  while (Date.now() - tStop < opts.seconds * 1000) {
    const label = republishedAt === undefined ? 'fresh' : 'fresh-after-republish';
    await pair.newnym();
    await attempt(label);
    if (republishedAt !== undefined && Date.now() - republishedAt > 5_000) break;
    await sleep(5_000);
  }
  say(`after stopping B: ${results.join('  ')}`);
  say(
    `onionbalance published a descriptor without B: ${republishedAt === undefined ? `not within ${opts.seconds} s` : `${Math.round((republishedAt - tStop) / 1000)} s after B stopped`}`,
  );
  say(`${results.length - failures}/${results.length} allocations after the stop succeeded at A`);
} catch (err) {
  failures++;
  console.error(`onionbalance-failover: ${err instanceof Error ? err.message : String(err)}${pair.diagnostics()}`);
} finally {
  await stop();
}
process.exit(failures === 0 ? 0 : 1);
