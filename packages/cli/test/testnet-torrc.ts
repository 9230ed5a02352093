// --tor-config files for the client's own tor in tests: join the private Tor network on loopback,
// or a network whose only authority nobody runs, where bootstrap can never finish.
import { readFileSync } from 'node:fs';
import { buildTorrc, type DirAuthority, type TorNetwork } from '@onionturn/testkit';

/** Lines every tor of a process sets for itself; the managed tor sets its own. */
const PER_PROCESS = /^(#|Nickname |DataDirectory |PidFile |RunAsDaemon |Log |ControlPort |SocksPort |CookieAuthentication |__OwningControllerProcess )/;

function clientLines(authorities: readonly DirAuthority[]): string {
  const full = buildTorrc({ role: 'client', nickname: 'shimtor', dataDir: '/unused', controlPort: 1, socksPort: 1, authorities });
  return (
    full
      .split('\n')
      .filter((l) => l !== '' && !PER_PROCESS.test(l))
      .join('\n') + '\n'
  );
}

/** What a client tor needs to join the test network: testkit's client torrc minus per-process lines. */
export function testNetworkConfig(net: TorNetwork): string {
  return clientLines(net.authorities);
}

/** A test network whose one authority listens nowhere (`orPort`, `dirPort`: free loopback ports). */
export function unreachableNetworkConfig(orPort: number, dirPort: number): string {
  return clientLines([{ nickname: 'nowhere', orPort, dirPort, v3ident: 'A'.repeat(40), fingerprint: 'B'.repeat(40) }]);
}

/** The DataDirectory of a running managed tor, from its command line (`-f <dataDir>/onionturn-torrc`). */
export function managedTorDataDir(pid: number): string {
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const torrc = args[args.indexOf('-f') + 1];
  if (torrc === undefined || !torrc.endsWith('/onionturn-torrc')) throw new Error(`not a managed tor: ${args.join(' ')}`);
  return torrc.slice(0, -'/onionturn-torrc'.length);
}
