// Ports for tools that take a fixed port on their command line: free for TCP and UDP when handed
// out, never handed out twice in a process, and relay ranges wholly free (a taken port in a range
// fails one allocation with 508).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { freePort, freePortRange, portFree } from '../src/index.js';

test('freePort: free for TCP and UDP, below the ephemeral range, never the same twice', async () => {
  const seen = new Set<number>();
  for (let i = 0; i < 50; i++) {
    const port = await freePort();
    assert.ok(port >= 10_000 && port < 20_000, `port ${port}`);
    assert.ok(!seen.has(port), `port ${port} handed out twice`);
    assert.ok(await portFree(port), `port ${port} is not free`);
    seen.add(port);
  }
});

test('freePortRange: consecutive, all free, overlapping no range or port handed out before', async () => {
  const taken: { min: number; max: number }[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await freePortRange(3);
    assert.equal(r.max - r.min, 2);
    assert.ok(r.min >= 20_000 && r.max < 32_768, `range ${r.min}-${r.max}`);
    for (const t of taken) assert.ok(r.max < t.min || r.min > t.max, `range ${r.min}-${r.max} overlaps ${t.min}-${t.max}`);
    for (let p = r.min; p <= r.max; p++) assert.ok(await portFree(p), `port ${p} is not free`);
    taken.push(r);
  }
});

test('portFree: false for a port a listener holds', async () => {
  const srv: Server = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = srv.address() as { port: number };
    assert.equal(await portFree(port), false);
  } finally {
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
});
