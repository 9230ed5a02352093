import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTorrc, dirAuthorityLine, onionbalanceObConfig, resolvConf, votingStartOffset, type DirAuthority, type TorrcOptions } from '../src/index.js';

const auth: DirAuthority = { nickname: 'auth0', orPort: 5000, dirPort: 7000, v3ident: 'A'.repeat(40), fingerprint: 'B'.repeat(40) };
const base = { nickname: 'n', dataDir: '/tmp/x/n', controlPort: 9051, authorities: [auth] } as const;
const lines = (text: string): string[] => text.trim().split('\n');

test('DirAuthority line follows the documented form', () => {
  assert.equal(dirAuthorityLine(auth), `DirAuthority auth0 orport=5000 no-v2 v3ident=${'A'.repeat(40)} 127.0.0.1:7000 ${'B'.repeat(40)}`);
});

test('every role gets the common test-network essentials', () => {
  const roles: TorrcOptions[] = [
    { ...base, role: 'authority', orPort: 1, dirPort: 2, exit: true, resolvConf: '/tmp/x/resolv.conf', votingStartOffset: 3 },
    { ...base, role: 'relay', orPort: 1, dirPort: 2 },
    { ...base, role: 'client', socksPort: 9050 },
    { ...base, role: 'onion', hiddenServiceDir: '/tmp/x/hs', hiddenServicePorts: [80] },
  ];
  for (const o of roles) {
    const l = lines(buildTorrc(o));
    for (const want of [
      'TestingTorNetwork 1',
      'DataDirectory /tmp/x/n',
      'ControlPort 127.0.0.1:9051',
      'CookieAuthentication 0',
      'AssumeReachable 1',
      'PathsNeededToBuildCircuits 0.67',
      'TestingDirAuthVoteExit *',
      'TestingMinExitFlagThreshold 0',
      'V3AuthNIntervalsValid 2',
      'GeoIPFile ""',
      'NumCPUs 1',
      'ShutdownWaitLength 0',
      dirAuthorityLine(auth),
    ]) {
      assert.ok(l.includes(want), `${o.role}: missing '${want}'`);
    }
    // Nothing may listen beyond loopback.
    for (const line of l.filter((x) => /^(ORPort|DirPort|SocksPort|ControlPort) /.test(x))) {
      assert.match(line, /^\w+ (0|127\.0\.0\.1:\d+)$/, line);
    }
  }
});

test('authority exit: voting schedule, exit policy and test DNS', () => {
  const l = lines(
    buildTorrc({ ...base, role: 'authority', orPort: 1, dirPort: 2, exit: true, resolvConf: '/tmp/x/resolv.conf', votingStartOffset: 4, owningPid: 42 }),
  );
  for (const want of [
    'AuthoritativeDirectory 1',
    'V3AuthoritativeDirectory 1',
    'AuthDirVoteStableGuaranteeMinUptime 0',
    'TestingV3AuthInitialVotingInterval 5',
    'TestingV3AuthInitialVoteDelay 2',
    'TestingV3AuthInitialDistDelay 2',
    'V3AuthVotingInterval 10',
    'V3AuthVoteDelay 2',
    'V3AuthDistDelay 2',
    'TestingV3AuthVotingStartOffset 4',
    'ExitRelay 1',
    'ExitPolicy accept *:*',
    'ServerDNSResolvConfFile /tmp/x/resolv.conf',
    'ServerDNSDetectHijacking 0',
    'OutboundBindAddressExit 127.0.0.1',
    'SocksPort 0',
    'Address 127.0.0.1',
    'ORPort 127.0.0.1:1',
    'DirPort 127.0.0.1:2',
    '__OwningControllerProcess 42',
  ]) {
    assert.ok(l.includes(want), `missing '${want}'`);
  }
});

test('plain relay is not an exit and does not vote', () => {
  const text = buildTorrc({ ...base, role: 'relay', orPort: 1, dirPort: 2 });
  assert.ok(lines(text).includes('ExitPolicy reject *:*'));
  assert.doesNotMatch(text, /AuthoritativeDirectory|ServerDNS|V3AuthVotingInterval/);
});

test('client has a loopback SocksPort and no relay ports', () => {
  const text = buildTorrc({ ...base, role: 'client', socksPort: 9050 });
  assert.ok(lines(text).includes('SocksPort 127.0.0.1:9050'));
  assert.doesNotMatch(text, /^(ORPort|DirPort|ExitRelay)/m);
});

test('client path: EntryNodes, MiddleNodes and ExitNodes only for the positions given; odd node names refused', () => {
  const l = lines(buildTorrc({ ...base, role: 'client', socksPort: 9050, path: { entry: 'relay3', middle: 'auth0', exit: 'relay4' } }));
  for (const want of ['EntryNodes relay3', 'MiddleNodes auth0', 'ExitNodes relay4']) assert.ok(l.includes(want), want);
  const some = buildTorrc({ ...base, role: 'client', socksPort: 9050, path: { middle: 'auth0' } });
  assert.match(some, /^MiddleNodes auth0$/m);
  assert.doesNotMatch(some, /^(EntryNodes|ExitNodes)/m);
  assert.doesNotMatch(buildTorrc({ ...base, role: 'client', socksPort: 9050 }), /Nodes /);
  assert.throws(() => buildTorrc({ ...base, role: 'client', socksPort: 1, path: { exit: 'a\nExitPolicy accept *:*' } }), /ExitNodes takes a relay nickname/);
});

test('onion service maps each virtual port to the same loopback port', () => {
  const l = lines(buildTorrc({ ...base, role: 'onion', hiddenServiceDir: '/tmp/x/hs', hiddenServicePorts: [80, 3478] }));
  assert.ok(l.includes('HiddenServiceDir /tmp/x/hs'));
  assert.ok(l.includes('HiddenServicePort 80 127.0.0.1:80'));
  assert.ok(l.includes('HiddenServicePort 3478 127.0.0.1:3478'));
  assert.ok(l.includes('SocksPort 0'));
});

test('missing role options and odd paths are rejected', () => {
  assert.throws(() => buildTorrc({ ...base, role: 'authority', orPort: 1, dirPort: 2 }), /votingStartOffset/);
  assert.throws(() => buildTorrc({ ...base, role: 'relay', orPort: 1, dirPort: 2, exit: true }), /resolvConf/);
  assert.throws(() => buildTorrc({ ...base, role: 'client' }), /socksPort/);
  assert.throws(() => buildTorrc({ ...base, role: 'onion', hiddenServiceDir: '/tmp/hs', hiddenServicePorts: [] }), /hidden service port/);
  assert.throws(() => buildTorrc({ ...base, role: 'client', socksPort: 1, authorities: [] }), /DirAuthority/);
  assert.throws(() => buildTorrc({ ...base, role: 'client', socksPort: 1, dataDir: '/tmp/a b' }), /whitespace/);
});

test('voting start offset puts the first valid-after leadSeconds ahead, within the interval', () => {
  for (let ms = 1_700_000_000_000; ms < 1_700_000_020_000; ms += 370) {
    for (const lead of [4, 5, 6]) {
      const offset = votingStartOffset(ms, lead);
      assert.ok(offset >= 0 && offset < 5);
      const target = Math.ceil(ms / 1000) + lead;
      assert.equal((target - offset) % 5, 0);
    }
  }
});

test('resolv.conf names only the loopback responder with its port', () => {
  assert.equal(resolvConf(5353), 'nameserver 127.0.0.1:5353\n');
});

test('info log is opt-in', () => {
  assert.doesNotMatch(buildTorrc({ ...base, role: 'client', socksPort: 1 }), /Log info/);
  assert.ok(lines(buildTorrc({ ...base, role: 'client', socksPort: 1, infoLog: true })).includes('Log info file /tmp/x/n/info.log'));
});

test('relay RelayBandwidthRate: rate = burst, 10 ms refills, tor minimum enforced', () => {
  const base = { nickname: 'r', dataDir: '/tmp/x', controlPort: 9, authorities: [auth] } as const;
  const text = buildTorrc({ ...base, role: 'relay', orPort: 1, dirPort: 2, bandwidthRate: 76_800 });
  assert.match(text, /^RelayBandwidthRate 76800$/m);
  assert.match(text, /^RelayBandwidthBurst 76800$/m);
  assert.match(text, /^TokenBucketRefillInterval 10 msec$/m);
  assert.doesNotMatch(buildTorrc({ ...base, role: 'relay', orPort: 1, dirPort: 2 }), /BandwidthRate/);
  assert.throws(() => buildTorrc({ ...base, role: 'relay', orPort: 1, dirPort: 2, bandwidthRate: 75_000 }), /76800/);
});

test('shaped relay: publishes the proxy port and listens on the real one', () => {
  const base = { nickname: 'r', dataDir: '/tmp/x', controlPort: 9, authorities: [auth] } as const;
  const l = buildTorrc({ ...base, role: 'relay', orPort: 1, advertisedOrPort: 5, dirPort: 2 }).split('\n');
  assert.ok(l.includes('ORPort 127.0.0.1:5 NoListen'));
  assert.ok(l.includes('ORPort 127.0.0.1:1 NoAdvertise'));
  assert.ok(!l.includes('ORPort 127.0.0.1:1'));
});

test('Onionbalance backend: HiddenServiceOnionbalanceInstance after the service, target host, ob_config text', () => {
  const text = buildTorrc({
    ...base,
    role: 'onion',
    hiddenServiceDir: '/tmp/x/hs',
    hiddenServicePorts: [3478],
    hiddenServiceTargetHost: '127.0.0.2',
    onionbalanceInstance: true,
  });
  const l = lines(text);
  assert.ok(l.indexOf('HiddenServiceOnionbalanceInstance 1') > l.indexOf('HiddenServiceDir /tmp/x/hs'));
  assert.ok(l.includes('HiddenServicePort 3478 127.0.0.2:3478'));
  assert.ok(
    !lines(buildTorrc({ ...base, role: 'onion', hiddenServiceDir: '/tmp/x/hs', hiddenServicePorts: [1] })).includes('HiddenServiceOnionbalanceInstance 1'),
  );
  assert.throws(
    () => buildTorrc({ ...base, role: 'onion', hiddenServiceDir: '/tmp/x/hs', hiddenServicePorts: [1], hiddenServiceTargetHost: '10.0.0.1' }),
    /loopback/,
  );
  const frontend = `${'a'.repeat(56)}.onion`;
  assert.equal(onionbalanceObConfig(frontend), `MasterOnionAddress ${frontend}\n`);
  assert.throws(() => onionbalanceObConfig('example.onion'), /v3 onion/);
});

test('authorities take votingInterval (Onionbalance needs 20 s)', () => {
  const auth20 = buildTorrc({ ...base, role: 'authority', orPort: 1, dirPort: 2, exit: false, votingStartOffset: 0, votingInterval: 20 });
  assert.ok(lines(auth20).includes('V3AuthVotingInterval 20'));
});

test('relay on another address (the congested relay in a namespace of its own): published, listened on, left from, and in DirAuthority', () => {
  const base = { nickname: 'r', dataDir: '/tmp/x', controlPort: 9, authorities: [auth] } as const;
  const l = lines(buildTorrc({ ...base, role: 'relay', orPort: 1, dirPort: 2, address: '10.77.2.1' }));
  for (const want of ['Address 10.77.2.1', 'ORPort 10.77.2.1:1', 'DirPort 10.77.2.1:2']) assert.ok(l.includes(want), want);
  // Its connections to other relays leave from that address too (the router sorts by it).
  assert.ok(l.includes('OutboundBindAddressOR 10.77.2.1'));
  assert.ok(!lines(buildTorrc({ ...base, role: 'relay', orPort: 1, dirPort: 2 })).some((x) => x.startsWith('OutboundBindAddressOR')), 'none on loopback');
  assert.match(dirAuthorityLine({ ...auth, address: '10.77.2.1' }), / 10\.77\.2\.1:\d+ /);
  assert.match(dirAuthorityLine(auth), / 127\.0\.0\.1:\d+ /);
});
