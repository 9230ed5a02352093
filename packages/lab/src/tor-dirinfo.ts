// Reads an authority's directory caches to tell when clients can start: the microdesc
// consensus must list every relay AND the authority must hold every listed microdescriptor.
// A client that asks an authority still missing one waits for tor's 10 s descriptor retry.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Digests from the "m" lines of a microdesc consensus (one per listed relay). */
export function consensusMicrodescDigests(consensus: string): string[] {
  return [...consensus.matchAll(/^m (\S+)$/gm)].map((m) => m[1]!);
}

/**
 * SHA-256 (base64, unpadded, as in "m" lines) of each microdescriptor in a cache file. A body
 * runs from its "onion-key" line up to the next "@annotation" or "onion-key" line.
 */
export function microdescDigests(cache: string): Set<string> {
  const bodies = cache.split(/^(?=onion-key$|@)/m).filter((b) => b.startsWith('onion-key\n'));
  return new Set(bodies.map((b) => createHash('sha256').update(b).digest('base64').replace(/=+$/, '')));
}

/** True when dataDir's consensus lists at least `relays` relays and every listed microdesc is cached. */
export async function hasCompleteDirInfo(dataDir: string, relays: number): Promise<boolean> {
  const read = (name: string): Promise<string> => readFile(join(dataDir, name), 'utf8').catch(() => '');
  const wanted = consensusMicrodescDigests(await read('cached-microdesc-consensus'));
  if (wanted.length < relays) return false;
  const have = microdescDigests((await read('cached-microdescs')) + (await read('cached-microdescs.new')));
  return wanted.every((d) => have.has(d));
}
