// A tcp:// listener behind tor's HiddenServiceExportCircuitID haproxy: each connection starts with
// a PROXY line, and the client is who it names (its circuit); a connection without one is closed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { AttributeType, MessageBuilder, MessageClass, Method, StreamFramer, decodeMessage, readAddressAttribute, type StunMessage } from '@onionturn/protocol';
import { waitFor } from '@onionturn/testkit';
import { TurnServer, createLogger, staticUsers } from '../src/index.js';

test('PROXY line first: the XOR-MAPPED-ADDRESS is the circuit address tor named; without the line the connection is closed', async (t) => {
  const server = await TurnServer.start({
    listen: [{ protocol: 'tcp', host: '127.0.0.1', port: 0, proxyHeader: true }],
    realm: 'proxy.test',
    lookup: staticUsers(new Map([['alice', 'pw']])),
    relayPorts: { min: 47300, max: 47399 },
    logger: createLogger({ level: 'error' }),
  });
  t.after(() => server.close());
  const port = server.addresses[0]!.port;
  const binding = new MessageBuilder(Method.Binding, MessageClass.Request).build();

  const sock = connect(port, '127.0.0.1');
  t.after(() => sock.destroy());
  await once(sock, 'connect');
  const got: StunMessage[] = [];
  const framer = new StreamFramer((f) => {
    const d = decodeMessage(Buffer.from(f));
    if (d.ok) got.push(d.value);
  });
  sock.on('data', (c: Buffer) => framer.push(c));
  // The line and the first request in one write, as tor may deliver them; then one more request.
  sock.write(Buffer.concat([Buffer.from('PROXY TCP6 fc00:dead:beef:4dad::0:2a ::1 65535 3478\r\n'), binding]));
  await waitFor('the Binding answer', () => got.length >= 1, 3000, 10);
  sock.write(binding);
  await waitFor('the second answer', () => got.length >= 2, 3000, 10);
  for (const m of got) {
    assert.deepEqual(readAddressAttribute(m, AttributeType.XorMappedAddress), { family: 'IPv6', address: 'fc00:dead:beef:4dad::2a', port: 65535 });
  }

  const plain = connect(port, '127.0.0.1');
  t.after(() => plain.destroy());
  await once(plain, 'connect');
  plain.on('error', () => undefined);
  const closed = once(plain, 'close');
  plain.write(binding);
  await closed;
});
