// A dgram `lookup` that accepts IP literals only: the shim's UDP sockets send to the address a
// datagram came from, so no name is ever resolved (and dns.lookup's nextTick per send is skipped).
import { isIP } from 'node:net';

export function ipOnlyLookup(address: string, _options: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  const family = isIP(address);
  if (family === 0) callback(new Error(`refusing to resolve '${address}': the shim sends only to IP addresses`), address, 0);
  else callback(null, address, family);
}
