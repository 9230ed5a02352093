import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { base32, generateOnionIdentity, onionHostname } from '../src/index.js';

test('base32 matches the RFC 4648 vectors (lowercase, unpadded)', () => {
  for (const [input, expected] of [
    ['', ''],
    ['f', 'my'],
    ['fo', 'mzxq'],
    ['foo', 'mzxw6'],
    ['foob', 'mzxw6yq'],
    ['fooba', 'mzxw6ytb'],
    ['foobar', 'mzxw6ytboi'],
  ] as const) {
    assert.equal(base32(Buffer.from(input)), expected);
  }
});

test('onionHostname agrees with stem (the library onionbalance uses) on a fixed key', () => {
  // python3 -c 'from stem.descriptor.hidden_service import HiddenServiceDescriptorV3 as H;
  //             print(H.address_from_identity_key(bytes(range(32))))'
  const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  assert.equal(onionHostname(key), 'aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dyp3kead.onion');
  assert.throws(() => onionHostname(Buffer.alloc(31)), /32 bytes/);
});

test('generateOnionIdentity: the PEM key and the hostname belong together', () => {
  const id = generateOnionIdentity();
  assert.match(id.hostname, /^[a-z2-7]{56}\.onion$/);
  const der = createPublicKey(id.privateKeyPem).export({ format: 'der', type: 'spki' });
  assert.equal(onionHostname(der.subarray(der.length - 32)), id.hostname);
});
