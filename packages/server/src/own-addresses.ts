// The server's own addresses are denied as peers; they come and go (DHCP, IPv6 privacy
// addresses), so they are looked at again on a schedule. Pure: the list and the time are passed in.

/**
 * When to look at the machine's interface addresses again (they come and go: DHCP, IPv6 privacy
 * addresses), and whether they changed: the server's own addresses must stay denied as peers.
 * Reading them can fail (it needs a socket, and a server out of descriptors has none): the list
 * source then answers undefined, the last addresses read stay, and the next tick tries again.
 */
export class OwnAddressWatch {
  #addresses: readonly string[];
  #key: string;
  #next: number;

  constructor(
    first: readonly string[],
    readonly list: () => readonly string[] | undefined,
    readonly everyMs: number,
    nowMs: number,
  ) {
    this.#addresses = first;
    this.#key = keyOf(this.#addresses);
    this.#next = nowMs + everyMs;
  }

  /** The addresses of the last successful look. */
  get addresses(): readonly string[] {
    return this.#addresses;
  }

  /** True when it is time to look and the addresses differ from the last look. */
  changed(nowMs: number): boolean {
    if (nowMs < this.#next) return false;
    const now = this.list();
    if (now === undefined) return false;
    this.#next = nowMs + this.everyMs;
    const key = keyOf(now);
    if (key === this.#key) return false;
    this.#addresses = now;
    this.#key = key;
    return true;
  }

  /** Look again now (SIGHUP), keeping the last addresses if that fails. */
  reset(nowMs: number): void {
    const now = this.list();
    if (now !== undefined) {
      this.#addresses = now;
      this.#key = keyOf(now);
    }
    this.#next = nowMs + this.everyMs;
  }
}

function keyOf(addresses: readonly string[]): string {
  return [...addresses].sort().join(',');
}
