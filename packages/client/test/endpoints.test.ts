// Upstream and listen addresses as the user writes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseListen, parseUpstream } from '../src/endpoints.js';

test('endpoints: upstream forms, loopback-only listener', () => {
  assert.deepEqual(parseUpstream('tls://turn.example.org:5349'), {
    ok: true,
    value: { transport: 'tls', host: 'turn.example.org', port: 5349, label: 'tls://turn.example.org:5349' },
  });
  const onion = parseUpstream('abcdefghijklmnop.onion:3478');
  assert.equal(onion.ok && onion.value.transport, 'tcp');
  assert.equal(parseUpstream('turn.example.org:3478').ok, false);
  assert.equal(parseUpstream('udp://1.2.3.4:3478').ok, false);
  assert.equal(parseUpstream('tcp://[::1]:3478').ok, true);
  assert.equal(parseListen('127.0.0.2:3478', false).ok, true);
  assert.equal(parseListen('[::1]:3478', false).ok, true);
  const remote = parseListen('192.168.1.5:3478', false);
  assert.equal(remote.ok, false);
  assert.match(remote.ok ? '' : remote.reason, /--allow-remote/);
  assert.equal(parseListen('192.168.1.5:3478', true).ok, true);
  assert.equal(parseListen('localhost:3478', true).ok, false);
});
