// Every checked-in corpus input (findings first among them) and built-in seed, replayed with no
// mutation: a finding that comes back fails here by name. Also what the coverage figure of the
// corpus is measured with: node --test --experimental-test-coverage fuzz/dist/test/corpus-replay.test.js
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCorpus } from '../src/corpus.js';
import { fuzzTarget } from '../src/engine.js';
import { TARGETS } from '../src/targets/index.js';

for (const target of TARGETS) {
  test(`corpus ${target.name}: ${loadCorpus(target.name).length} files and the built-in seeds pass every check`, async () => {
    const r = await fuzzTarget(target, { seed: 1, replayOnly: true, saveFindings: false });
    assert.deepEqual(
      r.findings.map((f) => `${f.kind}: ${f.message} (input ${f.hex})`),
      [],
    );
    assert.equal(r.execs, r.corpus);
  });
}
