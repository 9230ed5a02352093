// `onionturn server --workers 2` as an operator would run it: coturn's client relays over TCP and
// UDP (two users reaching each other's relay addresses, whichever worker holds them), metrics summed
// over the workers on one endpoint, SIGHUP reaching every worker, a killed worker restarted, and
// SIGTERM stopping all of them. In a network namespace where the server is 11.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { alive, NetNamespace, ProcessGroup, runUclient, startServer, waitFor } from '@onionturn/testkit';
import { assertEchoed } from './uclient-asserts.js';

const PUBLIC = '11.0.0.1';

function workerPids(log: string): Map<number, number> {
  const pids = new Map<number, number>();
  for (const line of log.split('\n')) {
    if (!line.includes('"worker-started"')) continue;
    const e = JSON.parse(line) as { worker: number; pid: number };
    pids.set(e.worker, e.pid);
  }
  return pids;
}

test('--workers 2: relays over TCP and UDP across workers, one metrics endpoint, SIGHUP to all, a dead worker restarted, SIGTERM stops all', async (t) => {
  const ns = NetNamespace.create([PUBLIC]);
  const group = new ProcessGroup();
  t.after(async () => {
    await group.stopAll(12_000);
    ns.delete();
  });
  const server = await startServer(
    group,
    ['--user', 'alice:wonderland', '--workers', '2', '--metrics', `${PUBLIC}:9464`],
    {},
    {
      listen: [`tcp://${PUBLIC}:3478`, `udp://${PUBLIC}:3478`],
      netns: ns,
      startTimeoutMs: 30_000,
    },
  );
  const pids = workerPids(server.process.output());
  assert.equal(pids.size, 2, server.process.output());
  const metric = (name: string): number => {
    const text = ns.run(process.execPath, ['-e', `fetch('http://${PUBLIC}:9464/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
    return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  };
  const base = { server: { host: PUBLIC, port: 3478 }, username: 'alice', password: 'wonderland', netns: ns, messages: 20 } as const;
  // Four TCP clients, handed to the workers in turn: each sends to another's relay address.
  assertEchoed(await runUclient(group, { ...base, tcp: true, clients: 4, extraArgs: ['-y', '-c'] }), 'TCP -y', 80);
  assertEchoed(await runUclient(group, { ...base, tcp: false, clients: 2, extraArgs: ['-y', '-c'] }), 'UDP -y', 40);
  // Each worker logs its own allocations; the one endpoint sums them.
  const logged = server.process
    .output()
    .split('\n')
    .filter((l) => l.includes('"allocation-created"')).length;
  assert.ok(logged >= 6, `${logged} allocations logged`);
  assert.equal(metric('onionturn_allocations_created_total'), logged, 'both workers counted on one endpoint');

  const reloads = (): number =>
    server.process
      .output()
      .split('\n')
      .filter((l) => l.includes('"reloaded"')).length;
  process.kill(server.process.pid, 'SIGHUP');
  await waitFor('both workers to reload', () => reloads() === 2, 10_000);

  const dead = pids.get(1)!;
  process.kill(dead, 'SIGKILL');
  await waitFor('the worker to be restarted', () => server.process.output().includes('"worker-restarted"'), 20_000);
  assert.match(server.process.output(), /"worker-exited"/);
  assertEchoed(await runUclient(group, { ...base, tcp: true, clients: 4, extraArgs: ['-y', '-c'] }), 'TCP -y after a restart', 80);

  const all = [...workerPids(server.process.output()).values()];
  const exited = once(server.process.child, 'exit');
  process.kill(server.process.pid, 'SIGTERM');
  const [code] = (await exited) as [number | null];
  assert.equal(code, 0, `the primary's exit code after SIGTERM:\n${server.process.output().slice(-3000)}`);
  for (const pid of all) assert.equal(alive(pid), false, `worker ${pid} stopped`);
});
