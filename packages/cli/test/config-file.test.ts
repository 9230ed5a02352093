// The --config file's text: a YAML or JSON mapping of option names, anything else one line (exit 2).
// The YAML cases below were found by the cli-parsers fuzz target: the yaml library only warned
// about them, on process warnings, several lines each, and the file was read anyway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../src/exit-codes.js';
import { parseConfigText } from '../src/config.js';

/** Runs fn with process warnings caught; returns them. */
function warningsOf(fn: () => void): string[] {
  const seen: string[] = [];
  const original = process.emitWarning;
  process.emitWarning = ((w: string | Error) => void seen.push(typeof w === 'string' ? w : w.message)) as typeof process.emitWarning;
  try {
    fn();
  } finally {
    process.emitWarning = original;
  }
  return seen;
}

function usageLine(text: string, path = 'onionturn.yaml'): string {
  let message = '';
  const warnings = warningsOf(() => {
    try {
      parseConfigText(text, path);
      assert.fail(`accepted ${JSON.stringify(text)}`);
    } catch (e) {
      assert.ok(e instanceof UsageError, String(e));
      message = e.message;
    }
  });
  assert.deepEqual(warnings, []);
  assert.doesNotMatch(message, /\n/);
  return message;
}

test('a YAML mapping of option names is read; so is JSON', () => {
  assert.deepEqual(parseConfigText('listen:\n  - tcp://127.0.0.1:3478\nmax-allocations: 10\n', 'c.yaml'), {
    listen: ['tcp://127.0.0.1:3478'],
    'max-allocations': 10,
  });
  assert.deepEqual(parseConfigText('{"realm":"x"}', 'c.json'), { realm: 'x' });
});

test('an anchor or alias ending in a colon (ambiguous YAML) is one usage line, not a multi-line process warning', () => {
  assert.match(usageLine('a: &x: 1\n'), /^config file onionturn\.yaml is not valid YAML: Anchor ending in : is ambiguous at line 1, column 6:$/);
  assert.match(usageLine('a: &x 1\nb: *x:\n'), /^config file onionturn\.yaml is not valid YAML: Alias ending in : is ambiguous/);
});

test('a list or mapping as an option name is one usage line', () => {
  assert.match(usageLine('[a]: 1\n'), /a list or mapping where an option name should be/);
  assert.match(usageLine('? {a: 1}\n: 1\n'), /a list or mapping where an option name should be/);
});

test('aliases, duplicate keys, a list, bad JSON: one usage line each', () => {
  assert.match(usageLine('a: &x 1\nb: *x\n'), /not valid YAML: .*[Aa]lias/);
  assert.match(usageLine('a: 1\na: 2\n'), /not valid YAML: Map keys must be unique/);
  assert.match(usageLine('- 1\n'), /must hold a YAML mapping/);
  assert.match(usageLine('{"a":', 'c.json'), /^config file c\.json is not valid JSON: /);
});
