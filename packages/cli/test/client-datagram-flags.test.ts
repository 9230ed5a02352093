// `onionturn client --socks-listen / --forward`: bad values and a missing upstream credential
// source are one line and exit code 2, before any tor starts (the real binary).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './run-cli.js';

const BASE = ['client', '--server', 'tcp://127.0.0.1:3478', '--allow-plaintext-upstream', '--socks', '127.0.0.1:9'];

test('bad --socks-listen / --forward values, and SOCKS UDP without upstream credentials: one line, exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [
      ['--socks-listen', '0.0.0.0:1080', '--upstream-secret-file', '/dev/null'],
      /^onionturn: --socks-listen 0\.0\.0\.0:1080: the SOCKS front end listens on a loopback IP address only/,
    ],
    [['--socks-listen', 'localhost:1080'], /--socks-listen localhost:1080: .*loopback IP address only/],
    [['--socks-listen', '127.0.0.1'], /--socks-listen: .*use 127\.0\.0\.1:PORT/],
    [
      ['--forward', 'tcp://127.0.0.1:5353=10.0.0.1:53'],
      /--forward: 'tcp:\/\/127\.0\.0\.1:5353=10\.0\.0\.1:53' is not a UDP forward: use udp:\/\/127\.0\.0\.1:LPORT=HOST:PORT/,
    ],
    [['--forward', 'udp://192.168.1.2:5353=10.0.0.1:53'], /--forward: local side .* must be a loopback IP address/],
    [['--forward', 'udp://127.0.0.1:5353=10.0.0.1'], /--forward: target of .*/],
    [['--forward', 'udp://127.0.0.1:0=10.0.0.1:53'], /--forward: local side of .*: port in '127.0.0.1:0' is not 1-65535/],
    [
      ['--socks-listen', '127.0.0.1:1080'],
      /--socks-listen signs its TURN requests with the shim's own upstream credentials: give --upstream-secret-file FILE or --credentials-url URL/,
    ],
    [['--forward', 'udp://127.0.0.1:5353=dns.example:53'], /--forward to an IP address or host name signs its TURN requests .*--upstream-secret-file/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli([...BASE, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('onionturn: warning'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] as string, message);
  }
});
