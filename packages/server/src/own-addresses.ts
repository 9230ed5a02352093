// The server's own addresses are denied as peers; they come and go (DHCP, IPv6 privacy
// addresses), so they are looked at again on a schedule. Pure: the list and the time are passed in.

/**
 * When to look at the machine's interface addresses again (they come and go: DHCP, IPv6 privacy
 * addresses), and whether they changed: the server's own addresses must stay denied as peers.
 */
export class OwnAddressWatch {
  #key: string;
  #next: number;

  constructor(
    readonly list: () => readonly string[],
    readonly everyMs: number,
    nowMs: number,
  ) {
    this.#key = keyOf(list());
    this.#next = nowMs + everyMs;
  }

  /** True when it is time to look and the addresses differ from the last look. */
  changed(nowMs: number): boolean {
    if (nowMs < this.#next) return false;
    this.#next = nowMs + this.everyMs;
    const key = keyOf(this.list());
    if (key === this.#key) return false;
    this.#key = key;
    return true;
  }

  /** The addresses were read anew elsewhere (SIGHUP): start from them. */
  reset(nowMs: number): void {
    this.#key = keyOf(this.list());
    this.#next = nowMs + this.everyMs;
  }
}

function keyOf(addresses: readonly string[]): string {
  return [...addresses].sort().join(',');
}
