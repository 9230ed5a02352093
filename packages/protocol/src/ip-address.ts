// Textual IPv4/IPv6 addresses <-> bytes, without sockets. Strict: only canonical dotted-quad
// decimal IPv4 (no octal, hex or short forms that could fool a policy check) and RFC 4291 IPv6.

const DOT = 0x2e;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/**
 * Parses "a.b.c.d" (decimal, no leading zeros) into 4 bytes, or undefined. One pass over the
 * characters, no split or regular expression: every response with an address parses one.
 */
export function parseIPv4(text: string): Buffer | undefined {
  const n = text.length;
  if (n < 7 || n > 15) return undefined;
  const out = Buffer.allocUnsafe(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= n; i++) {
    // The end of the text ends the last part as a dot would.
    const c = i < n ? text.charCodeAt(i) : DOT;
    if (c === DOT) {
      if (digits === 0 || part === 4) return undefined;
      out[part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= DIGIT_0 && c <= DIGIT_9) {
      if (digits > 0 && value === 0) return undefined; // a leading zero
      value = value * 10 + (c - DIGIT_0);
      if (++digits > 3 || value > 255) return undefined;
    } else return undefined;
  }
  return part === 4 ? out : undefined;
}

/** Parses an IPv6 address (with optional "::" and trailing dotted IPv4) into 16 bytes. */
export function parseIPv6(text: string): Buffer | undefined {
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  if (text.length < 2 || text.length > 45 || text.includes('%')) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const items = s.split(':');
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as string;
      if (i === items.length - 1 && item.includes('.')) {
        const v4 = parseIPv4(item);
        if (!v4) return undefined;
        out.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return undefined;
        out.push(parseInt(item, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0] as string);
  const tail = halves.length === 2 ? groups(halves[1] as string) : [];
  if (!head || !tail) return undefined;
  const total = head.length + tail.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  const out = Buffer.alloc(16);
  head.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  tail.forEach((g, i) => out.writeUInt16BE(g, (8 - tail.length + i) * 2));
  return out;
}

/** 4 or 16 bytes for an IPv4 or IPv6 literal, else undefined. */
export function parseIp(text: string): Buffer | undefined {
  return text.includes(':') ? parseIPv6(text) : parseIPv4(text);
}

export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/** RFC 5952 canonical text: lowercase, no leading zeros, longest zero run (>= 2) as "::". */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(((bytes[offset + i * 2] as number) << 8) | (bytes[offset + i * 2 + 1] as number));
  // IPv4-mapped addresses keep the dotted tail, as Node and most tools print them.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${formatIPv4(bytes, offset + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string =>
    g
      .slice(from, to)
      .map((x) => x.toString(16))
      .join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

export function formatIp(bytes: Uint8Array): string {
  return bytes.length === 4 ? formatIPv4(bytes) : formatIPv6(bytes);
}
