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

// Seeds captured from a real Chromium call (scripts/fuzz-capture-chromium.mjs) are part of the
// replay above; here: they are there, and Chromium's own conversations allocate, get permissions
// and channels, and relay through the server core (not stopped at the first check).
test('the Chromium seeds are in the corpus, and its conversations relay through the server core', async () => {
  const chromium = (name: string) => loadCorpus(name).filter((e) => /\/chromium-[0-9a-f]+\.hex$/.test(e.file));
  for (const name of ['stun-decoder', 'channel-data', 'stream-framer', 'server-core']) assert.ok(chromium(name).length > 0, `no Chromium seeds for ${name}`);
  const core = TARGETS.find((t) => t.name === 'server-core');
  assert.ok(core);
  await core.init?.();
  for (const e of chromium('server-core')) {
    const behaviour = core.run(e.input);
    // STUN method/class/error: Allocate success (3/2), CreatePermission success (8/2); datagrams reached a peer.
    assert.match(behaviour, /(^|,)3\/2\/(,|\|)/, `${e.file}: ${behaviour}`);
    assert.match(behaviour, /(^|,)8\/2\/(,|\|)/, `${e.file}: ${behaviour}`);
    assert.match(behaviour, /packetsToPeer/, `${e.file}: ${behaviour}`);
  }
});
