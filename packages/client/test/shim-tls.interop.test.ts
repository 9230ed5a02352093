// TURN over TLS through the SOCKS stream: coturn with a self-signed certificate (made by openssl
// here) behind microsocks. A matching SPKI pin or CA relays; a wrong pin or CA refuses the
// connection with a clear log line, and the app's flow is closed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ProcessGroup,
  countClientConnections,
  requireTool,
  runUclient,
  startCoturn,
  startMicrosocks,
  startTurnutilsPeer,
  waitFor,
  type Coturn,
} from '@onionturn/testkit';
import { Shim, parseUpstream, type TlsTrust } from '../src/index.js';
import { formatPin, spkiSha256 } from '../src/tls-pin.js';
import { captureLogger, messages, type LogLine } from './helpers.js';

const SECRET = 'tls-secret';

function selfSigned(dir: string, name: string): { cert: string; key: string; pem: Buffer; pin: string } {
  const openssl = requireTool({ command: 'openssl', debianPackage: 'openssl' });
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    openssl,
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  const pem = readFileSync(cert);
  return { cert, key, pem, pin: formatPin(spkiSha256(new X509Certificate(pem).raw)) };
}

describe('tls:// upstream with a pinned key or a CA, through microsocks to coturn', () => {
  const group = new ProcessGroup();
  const shims: Shim[] = [];
  let dir: string;
  let coturn: Coturn;
  let peerPort: number;
  let socksPort: number;
  let server: ReturnType<typeof selfSigned>;
  let other: ReturnType<typeof selfSigned>;

  async function startShim(tls: TlsTrust): Promise<{ shim: Shim; lines: LogLine[] }> {
    const log = captureLogger();
    const up = parseUpstream(`tls://127.0.0.1:${coturn.tlsPort ?? 0}`);
    if (!up.ok) throw new Error(up.reason);
    const shim = new Shim({
      listen: { host: '127.0.0.1', port: 0 },
      servers: [up.value],
      socks: { host: '127.0.0.1', port: socksPort },
      logger: log.logger,
      tls,
      connectTimeoutMs: 5000,
      tickMs: 200,
    });
    shims.push(shim);
    await shim.start();
    return { shim, lines: log.lines };
  }

  /** A refused upstream leaves uclient retrying its Allocate: the failing cases cut it short. */
  function uclient(shim: Shim, messagesPerClient = 20, timeoutMs = 15_000): ReturnType<typeof runUclient> {
    return runUclient(group, {
      server: { host: '127.0.0.1', port: shim.address.port },
      peer: { host: '127.0.0.1', port: peerPort },
      secret: SECRET,
      tcp: false,
      noRtcp: true,
      messages: messagesPerClient,
      clients: 1,
      intervalMs: 10,
      timeoutMs,
    });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'onionturn-tls-'));
    server = selfSigned(dir, 'turn-server');
    other = selfSigned(dir, 'someone-else');
    coturn = await startCoturn(group, { secrets: [SECRET], verbose: false, tls: { cert: server.cert, key: server.key } });
    peerPort = (await startTurnutilsPeer(group)).port;
    socksPort = (await startMicrosocks(group)).port;
  });
  after(async () => {
    for (const s of shims) await s.stop();
    await group.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the right pin relays', async () => {
    const { shim, lines } = await startShim({ pins: [Buffer.from(server.pin.slice(7), 'base64')] });
    const r = await uclient(shim);
    assert.equal(r.sent, 20, r.output.slice(-800) + messages(lines));
    assert.equal(r.received, 20, r.output.slice(-800));
    assert.match(messages(lines), /flow open/);
    await shim.stop();
  });

  test('the right CA (no pin) relays', async () => {
    const { shim, lines } = await startShim({ pins: [], ca: server.pem });
    const r = await uclient(shim);
    assert.equal(r.received, 20, r.output.slice(-800) + messages(lines));
    await shim.stop();
  });

  test('a wrong pin refuses the connection: a clear line naming the server key, the flow closed, nothing left open', async () => {
    const { shim, lines } = await startShim({ pins: [Buffer.from(other.pin.slice(7), 'base64')] });
    const r = await uclient(shim, 3, 5000);
    assert.equal(r.received ?? 0, 0);
    const text = messages(lines);
    // SafeLogging: the server is "server #1" without --log-sensitive.
    assert.match(
      text,
      new RegExp(
        `TLS certificate of server #1 does not match the pinned key \\(server key is ${server.pin.replace(/[+/]/g, '\\$&')}\\); refusing the connection`,
      ),
    );
    assert.match(text, /flow closed: no upstream stream: TLS certificate .* does not match the pinned key/);
    assert.equal(
      lines.some((l) => l.message === 'flow open'),
      false,
      'no flow ever opened',
    );
    assert.doesNotMatch(JSON.stringify(lines), new RegExp(`127\\.0\\.0\\.1:${coturn.tlsPort}`));
    await waitFor('flows closed', () => shim.activeFlows === 0, 5000);
    assert.equal(shim.stats.upstreamFailures >= 1, true);
    await shim.stop();
    await waitFor('no shim->SOCKS sockets', () => countClientConnections(socksPort) === 0, 5000);
  });

  test('a CA that did not sign the certificate refuses the connection too', async () => {
    const { shim, lines } = await startShim({ pins: [], ca: other.pem });
    const r = await uclient(shim, 3, 5000);
    assert.equal(r.received ?? 0, 0);
    assert.match(messages(lines), /flow closed: no upstream stream: TLS with server #1 failed: self[- ]signed certificate/);
    await shim.stop();
  });
});
