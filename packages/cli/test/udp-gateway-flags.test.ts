// `onionturn udp-gateway` refuses bad flags with one line and exit code 2 (the real binary).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './run-cli.js';
import { parseGatewayListen, parseGatewayTarget } from '../src/commands/udp-gateway.js';

test('bad udp-gateway flags: one line saying what to do, exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [['--listen', 'tcp://0.0.0.0:5300', '--to', 'udp://127.0.0.1:53'], /is not a loopback address: .*pass --allow-public-listen/],
    [['--listen', 'tcp://127.0.0.1:5300', '--to', 'udp://localhost:53'], /--to: 'localhost' must be an IP address/],
    [['--listen', 'tcp://127.0.0.1:5300'], /--to udp:\/\/IP:PORT is required/],
    [['--to', 'udp://127.0.0.1:53'], /--listen tcp:\/\/IP:PORT is required/],
    [['--listen', '127.0.0.1:5300', '--to', 'udp://127.0.0.1:53'], /must be tcp:\/\/IP:PORT/],
    [['--listen', 'tcp://127.0.0.1:5300', '--to', 'udp://127.0.0.1:53', '--max-streams', '0'], /--max-streams must be a whole number from 1/],
    [['--listen', 'tcp://127.0.0.1:5300', '--to', 'udp://127.0.0.1:53', '--metrics', '0.0.0.0:9465'], /--metrics 0\.0\.0\.0:9465 is not a loopback address/],
  ];
  await Promise.all(
    cases.map(async ([args, expected]) => {
      const r = await runCli(['udp-gateway', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, expected);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }),
  );
});

test('listen and target parsing', () => {
  assert.deepEqual(parseGatewayListen('tcp://[::1]:0', false), { ok: true, value: { host: '::1', port: 0 } });
  assert.equal(parseGatewayListen('tcp://192.0.2.1:5300', false).ok, false);
  assert.equal(parseGatewayListen('tcp://192.0.2.1:5300', true).ok, true);
  assert.equal(parseGatewayListen('tcp://example.org:5300', true).ok, false);
  assert.deepEqual(parseGatewayTarget('udp://[2001:db8::1]:53'), { ok: true, value: { host: '2001:db8::1', port: 53 } });
  assert.equal(parseGatewayTarget('udp://127.0.0.1:0').ok, false);
  assert.equal(parseGatewayTarget('tcp://127.0.0.1:53').ok, false);
});
