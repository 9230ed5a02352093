// A one-entry memory for a function of a text that is nearly always the same: the relay address
// every allocation of a family announces (parsed and reformatted for each allocation made and
// gone before; ~1.7% of the server's CPU while making allocations). A second family alternating
// with the first only costs the parse again.

/** `f`, remembering its last argument and result. */
export function lastTextMemo<R>(f: (text: string) => R): (text: string) => R {
  let last: string | undefined;
  let result: R;
  return (text) => {
    if (text !== last) {
      result = f(text);
      last = text;
    }
    return result;
  };
}
