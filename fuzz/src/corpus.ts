// Corpus files: fuzz/corpus/<target>/<name>.hex, one input each, hex with '#' comment lines.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is fuzz/dist/src/corpus.js once built). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CORPUS_ROOT = join(REPO_ROOT, 'fuzz', 'corpus');

export function parseHexFile(text: string): Buffer {
  const hex = text
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#'))
    .join('')
    .replace(/\s+/g, '');
  return Buffer.from(hex, 'hex');
}

export function formatHexFile(input: Buffer, comment: string): string {
  const lines = comment.split('\n').map((l) => `# ${l}`);
  const hex = input.toString('hex');
  for (let i = 0; i < hex.length; i += 64) lines.push(hex.slice(i, i + 64));
  return lines.join('\n') + '\n';
}

export interface CorpusEntry {
  readonly file: string;
  readonly input: Buffer;
}

export function loadCorpus(target: string, root = CORPUS_ROOT): CorpusEntry[] {
  const dir = join(root, target);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.hex'))
    .sort()
    .map((f) => ({ file: join(dir, f), input: parseHexFile(readFileSync(join(dir, f), 'utf8')) }));
}

/** Saves an input under a name made from its hash; returns the path (unchanged if already there). */
export function saveInput(target: string, prefix: string, input: Buffer, comment: string, root = CORPUS_ROOT): string {
  const dir = join(root, target);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${prefix}-${createHash('sha1').update(input).digest('hex').slice(0, 12)}.hex`);
  if (!existsSync(file)) writeFileSync(file, formatHexFile(input, comment));
  return file;
}
