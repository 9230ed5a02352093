// A counter fed from growing totals at scrape time: it shows what the totals say, zero label sets
// included, and never goes back when a total does (a restarted source).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { totalsCounter } from '../src/totals-counter.js';

test('a counter shows the totals at each scrape, label sets at 0 from the first, never going back', async () => {
  const registry = new Registry();
  const totals = { x: 0, y: 5 };
  totalsCounter(registry, 'demo_total', 'demo', ['reason'], () => [
    [['x'], totals.x],
    [['y'], totals.y],
  ]);
  const values = async (): Promise<string[]> => (await registry.metrics()).split('\n').filter((l) => l.startsWith('demo_total'));
  assert.deepEqual(await values(), ['demo_total{reason="x"} 0', 'demo_total{reason="y"} 5']);
  totals.x = 3;
  totals.y = 7;
  assert.deepEqual(await values(), ['demo_total{reason="x"} 3', 'demo_total{reason="y"} 7']);
  totals.y = 1; // the source started again from 0: the counter keeps 7 and counts on from 1
  assert.deepEqual(await values(), ['demo_total{reason="x"} 3', 'demo_total{reason="y"} 7']);
  totals.y = 4;
  assert.deepEqual(await values(), ['demo_total{reason="x"} 3', 'demo_total{reason="y"} 10']);
});
