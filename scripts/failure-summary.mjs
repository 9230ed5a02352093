#!/usr/bin/env node
// Reads a `node --test --test-reporter=spec` log and prints each failing test's location, name
// and the head of its error, short. CI shows only the tail of a run's output, where a long
// failure message (tor logs, diagnostics) would otherwise hide what failed in the others.
//   node scripts/failure-summary.mjs LOG
import { readFileSync } from 'node:fs';

const [file] = process.argv.slice(2);
if (!file) {
  console.error('usage: node scripts/failure-summary.mjs LOG');
  process.exit(2);
}
const lines = readFileSync(file, 'utf8').split('\n');
const start = lines.findIndex((l) => l.startsWith('✖ failing tests:'));
if (start < 0) process.exit(0);

/** Lines of an error's message: up to the stack or the error's fields. */
const HEAD_LINES = 6;
const WIDTH = 240;
const cut = (l) => (l.length > WIDTH ? `${l.slice(0, WIDTH)}…` : l);
const out = [];
for (let i = start + 1; i < lines.length; i++) {
  if (!lines[i].startsWith('test at ')) continue;
  const block = [lines[i], lines[i + 1] ?? ''];
  let head = 0;
  let inMessage = true;
  let j = i + 2;
  for (; j < lines.length && !lines[j].startsWith('test at '); j++) {
    const l = lines[j];
    if (/^\s+at /.test(l) || /^\s+\{$/.test(l)) inMessage = false;
    if (/^\s*$/.test(l)) continue;
    // A message that says what failed again at its end ("=> ...") gives that line too.
    if ((inMessage && head++ < HEAD_LINES) || /^\s+=> /.test(l)) block.push(cut(l));
  }
  out.push(block.join('\n'));
  i = j - 1;
}
if (out.length > 0) console.log(`\n=== failing tests, short (full log above) ===\n${out.join('\n\n')}`);
