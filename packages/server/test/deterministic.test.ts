// Randomness is injected like time: with the same seed, two cores give the same relay ports,
// reservation tokens and Data indications, so a core test (or a fuzz finding) replays exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttributeType, readAddressAttribute } from '@onionturn/protocol';
import { PortPool } from '../src/index.js';
import { peer, seededRandom, world } from './harness.js';

function run(seed: number): unknown[] {
  const w = world({ random: seededRandom(seed), ports: new PortPool(50000, 50999, 150_000, seededRandom(seed + 1)) });
  const out: unknown[] = [];
  for (let i = 0; i < 3; i++) {
    const c = w.client();
    out.push(readAddressAttribute(c.allocate(), AttributeType.XorRelayedAddress));
  }
  const c = w.client();
  const even = c.allocate([
    [AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }],
    [AttributeType.EvenPort, { kind: 'even-port', reserve: true }],
  ]);
  out.push(even.attributes.find((a) => a.type === AttributeType.ReservationToken)?.value.toString('hex'));
  const p = peer('93.184.216.34', 5000);
  c.permit(p);
  c.send(p, Buffer.from('ping'));
  w.core.handlePeerDatagram(w.relays.at(-1)!.relay, Buffer.from('pong'), p.address, p.port);
  out.push(c.link.messages.at(-1)!.toString('hex'));
  return out;
}

test('the same seed gives the same ports, tokens and indications; another seed does not', () => {
  assert.deepEqual(run(7), run(7));
  assert.notDeepEqual(run(7), run(8));
});
