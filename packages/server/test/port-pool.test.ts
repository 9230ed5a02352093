// The relay port pool: random order, quarantine before reuse, availability first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortPool } from '../src/index.js';

test('port pool: random order, quarantine before reuse, exhaustion', () => {
  const pool = new PortPool(40000, 40009, 1000);
  const taken = new Set<number>();
  for (let i = 0; i < 10; i++) taken.add(pool.take(0)!);
  assert.equal(taken.size, 10);
  assert.equal(pool.take(0), undefined);
  pool.give(40003, 0);
  pool.give(40004, 500);
  assert.equal(pool.take(1000), 40003, 'out of quarantine (40004 still rests)');
  pool.give(40003, 1000);
  // Nothing free: the longest-resting quarantined port is reused early (availability first).
  assert.equal(pool.take(1001), 40004);
  assert.equal(pool.earlyReuses, 1);
  assert.equal(pool.take(1002), 40003);
  assert.equal(pool.take(1003), undefined, 'every port in use');
  const resting = new PortPool(40000, 40001, 1000);
  const first = resting.take(0)!;
  resting.give(first, 0);
  assert.notEqual(resting.take(1), first, 'a free port is preferred to a quarantined one');
  const orders = new Set<string>();
  for (let k = 0; k < 5; k++) {
    const p = new PortPool(40000, 40099, 0);
    orders.add(String([p.take(0), p.take(0), p.take(0)]));
  }
  assert.ok(orders.size > 1, 'not sequential');
  const even = new PortPool(40000, 40099, 0);
  for (let i = 0; i < 20; i++) assert.equal(even.take(0, true)! % 2, 0);
  const pairs = new PortPool(40000, 40009, 0);
  const got: number[] = [];
  for (let i = 0; i < 5; i++) got.push(...pairs.takePair(0)!);
  assert.deepEqual(
    got.sort((x, y) => x - y),
    [40000, 40001, 40002, 40003, 40004, 40005, 40006, 40007, 40008, 40009],
  );
  assert.equal(pairs.takePair(0), undefined);
});
