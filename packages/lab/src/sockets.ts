// Socket facts for tests: can we connect, and how many TCP connections touch a port (read from
// /proc/net/tcp{,6}, so leaks are counted at the kernel, not by the code under test).
import { readFileSync } from 'node:fs';

export { canConnect } from '@onionturn/io';

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
};

export interface TcpEntry {
  readonly localPort: number;
  readonly remotePort: number;
  readonly state: string;
}

export function tcpEntries(): TcpEntry[] {
  const out: TcpEntry[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      const local = f[1]?.split(':')[1];
      const remote = f[2]?.split(':')[1];
      if (!local || !remote) continue;
      out.push({ localPort: parseInt(local, 16), remotePort: parseInt(remote, 16), state: TCP_STATES[f[3] ?? ''] ?? f[3] ?? '' });
    }
  }
  return out;
}

/** Open (not TIME_WAIT/LISTEN) connections whose server side is `port`, seen from the server. */
export function countServerConnections(port: number): number {
  return tcpEntries().filter((e) => e.localPort === port && e.state !== 'LISTEN' && e.state !== 'TIME_WAIT' && e.state !== 'CLOSE').length;
}

/** Open client-side sockets connected to `port` (the connecting end), e.g. the shim's to SOCKS. */
export function countClientConnections(port: number): number {
  return tcpEntries().filter((e) => e.remotePort === port && e.state !== 'TIME_WAIT' && e.state !== 'CLOSE').length;
}

/** True when some UDP socket is bound to `port` (from /proc/net/udp{,6}). */
export function udpBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    try {
      if (
        readFileSync(file, 'utf8')
          .split('\n')
          .some((l) => l.trim().split(/\s+/)[1]?.endsWith(hex.trim()))
      )
        return true;
    } catch {
      // no IPv6
    }
  }
  return false;
}
