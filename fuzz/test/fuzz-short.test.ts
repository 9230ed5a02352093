// A short fuzz of every target with a fixed seed, as part of npm test: the checked-in corpus
// (findings included) is replayed, then a few thousand mutations per target. The long run is
// `npm run fuzz`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzTarget } from '../src/engine.js';
import { minimise } from '../src/engine.js';
import { Rng } from '../src/rng.js';
import { TARGETS } from '../src/targets/index.js';
import { parseConversation, writeConversation } from '../src/conversation.js';
import type { Target } from '../src/target.js';

/** Mutations per target: about 30 s in all on a loaded 2-core machine. */
const EXECS: Record<string, number> = {
  'stun-decoder': 40_000,
  'stream-framer': 60_000,
  'channel-data': 100_000,
  'server-core': 6_000,
  'peer-policy': 40_000,
  'proxy-header': 100_000,
  'credential-request': 30_000,
  'socks5-codec': 100_000,
  'shim-flow': 30_000,
  'socks-front': 30_000,
  'server-flags': 10_000,
  'cli-parsers': 40_000,
};

for (const target of TARGETS) {
  test(`fuzz ${target.name}: the corpus and ${EXECS[target.name] ?? 10_000} mutations (seed 1) pass every check`, async () => {
    const r = await fuzzTarget(target, { seed: 1, execs: EXECS[target.name] ?? 10_000, saveFindings: false });
    assert.deepEqual(
      r.findings.map((f) => `${f.kind}: ${f.message} (input ${f.hex})`),
      [],
    );
    assert.equal(r.crashes, 0);
    assert.equal(r.overBudget, 0);
    assert.ok(r.corpus > 0, 'the target has seeds');
  });
}

test('the PRNG is reproducible by seed', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const xs = Array.from({ length: 5 }, () => a.u32());
  assert.deepEqual(
    Array.from({ length: 5 }, () => b.u32()),
    xs,
  );
  assert.notDeepEqual(
    Array.from({ length: 5 }, () => c.u32()),
    xs,
  );
});

test('minimise keeps the bug and drops the rest', () => {
  const target: Target = {
    name: 'toy',
    maxSize: 100,
    budgetUs: () => 1e6,
    seeds: () => [],
    mutate: (b) => b,
    run(input) {
      if (input.includes(0x42)) throw new Error('boom');
      return '';
    },
  };
  const small = minimise(target, Buffer.from('xxxxxxxxBxxxxxxxxxxxxx'), (b) => b.includes(0x42));
  assert.equal(small.toString(), 'B');
});

test('a conversation survives writing and parsing', () => {
  const conv = {
    config: 5,
    records: [
      { op: 0x80, payload: Buffer.from('abc') },
      { op: 4, payload: Buffer.from([0, 10]) },
    ],
  };
  assert.deepEqual(parseConversation(writeConversation(conv)), conv);
});
