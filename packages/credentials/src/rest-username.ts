// REST usernames: `<expiry unix seconds>:<id>`. coturn's own client (`turnutils_uclient -W`)
// sends a bare `<expiry>` when it has no user name, so that form is accepted too.

export interface RestUsername {
  /** Unix seconds after which the credential is no longer valid. */
  readonly expiry: number;
  /** The part after the first ':' (random id or caller label); '' for a bare expiry. */
  readonly id: string;
}

// 1-12 digits covers every expiry until the year 33658 and keeps the number a safe integer.
const USERNAME = /^(\d{1,12})(?::(.*))?$/s;

export function formatRestUsername(expiry: number, id: string): string {
  return `${expiry}:${id}`;
}

/** Parses a username, or returns undefined when it is not a REST username. */
export function parseRestUsername(username: string): RestUsername | undefined {
  const match = USERNAME.exec(username);
  if (!match?.[1]) return undefined;
  return { expiry: Number(match[1]), id: match[2] ?? '' };
}
