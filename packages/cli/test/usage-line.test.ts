// A usage error is one line on the terminal, whatever the user gave: found by the server-flags and
// cli-parsers fuzz targets, whose values with a carriage return (a config file saved on Windows, a
// pasted value) or an escape sequence came back verbatim in the message, so the printed line could
// be overwritten or recoloured by the value it quotes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../src/main.js';
import { oneLine } from '../src/exit-codes.js';

async function run(argv: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const code = await main(argv, { stdout: () => undefined, stderr: (t) => void (stderr += t) });
  return { code, stderr };
}

test('a flag value with a carriage return and an escape sequence: one printable line, the characters shown escaped, exit 2', async () => {
  const r = await run(['server', '--user', 'a:b', '--relay-ports', '0-0\r\u001b[2Kall good']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "onionturn: --relay-ports must be MIN-MAX within 1-65535, got '0-0\\r\\u001b[2Kall good'\n");
});

test('a peer policy rule with control characters: the same', async () => {
  const r = await run(['server', '--user', 'a:b', '--peer-policy', 'accept\r\u0007 *:*']);
  assert.equal(r.code, 2);
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(r.stderr.slice(0, -1), /[\u0000-\u001f\u007f-\u009f]/);
  assert.match(r.stderr, /^onionturn: bad peer policy rule 'accept\\r\\u0007 \*:\*'/);
});

test('oneLine: newlines (and the blanks around them) become one space; other control characters are escaped', () => {
  assert.equal(oneLine('first\r\n  second\nthird'), 'first second third');
  assert.equal(oneLine('a\tb\u0000c\u009bd\u2028e'), 'a\\tb\\u0000c\\u009bd\\u2028e');
  assert.equal(oneLine('plain'), 'plain');
});
