// The congested relay's tc commands and counters, as text (no kernel): what each direction
// matches, the queue's size, and reading tc's statistics back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bottleneckTcCommands, parseBottleneckCounters, queueBytes } from '../src/index.js';

const relay = { publishedOrPort: 5001, orPort: 6001, outboundAddress: '127.0.1.1' };

test('queue: the rate times the time, at least two full packets', () => {
  assert.equal(queueBytes({ rateKbps: 600, queueMs: 200 }), 15_000);
  assert.equal(queueBytes({ rateKbps: 600, queueMs: 1 }), 3028);
});

test('commands: an unlimited default class, and per direction a limited class, a bfifo and its matches', () => {
  const cmds = bottleneckTcCommands({ rateKbps: 600, queueMs: 200 }, relay).map((c) => c.join(' '));
  assert.equal(cmds[0], 'qdisc add dev lo root handle 1: htb default 1', 'what no filter matches is not limited');
  assert.match(cmds[1]!, /^class add dev lo parent 1: classid 1:1 htb rate 100gbit/);
  const limited = cmds.filter((c) => c.startsWith('class') && c.includes('600kbit'));
  assert.deepEqual(
    limited.map((c) => c.split(' ')[7]),
    ['1:10', '1:20'],
  );
  for (const c of limited) assert.match(c, /rate 600kbit ceil 600kbit/);
  assert.ok(cmds.includes('qdisc add dev lo parent 1:10 handle 10: bfifo limit 15000'));
  assert.ok(cmds.includes('qdisc add dev lo parent 1:20 handle 20: bfifo limit 15000'));
  const filters = cmds.filter((c) => c.startsWith('filter')).map((c) => c.replace(/^.* u32 match /, ''));
  assert.deepEqual(filters, [
    'ip dport 5001 0xffff flowid 1:10', // to the relay on connections to it (the proxy's port)
    'ip dst 127.0.1.1/32 flowid 1:10', // answers on connections it made
    'ip sport 6001 0xffff flowid 1:20', // its answers on connections to it (its real ORPort)
    'ip src 127.0.1.1/32 flowid 1:20', // on connections it made
  ]);
  assert.throws(() => bottleneckTcCommands({ rateKbps: 0, queueMs: 200 }, relay), /rateKbps > 0/);
});

test('counters: bytes sent and drops of both classes from tc -s class show', () => {
  const text = [
    'class htb 1:1 root prio 0 rate 100Gbit ceil 100Gbit burst 0b cburst 0b ',
    ' Sent 7806070 bytes 10725 pkt (dropped 0, overlimits 2803 requeues 0) ',
    'class htb 1:10 root leaf 10: prio 0 rate 600Kbit ceil 600Kbit burst 3027b cburst 3027b ',
    ' Sent 714598 bytes 858 pkt (dropped 837, overlimits 38 requeues 0) ',
    ' backlog 0b 0p requeues 0',
    'class htb 1:20 root leaf 20: prio 0 rate 600Kbit ceil 600Kbit burst 3027b cburst 3027b ',
    ' Sent 730216 bytes 1108 pkt (dropped 3, overlimits 277 requeues 0) ',
  ].join('\n');
  assert.deepEqual(parseBottleneckCounters(text), { in: { sentBytes: 714_598, dropped: 837 }, out: { sentBytes: 730_216, dropped: 3 } });
  assert.throws(() => parseBottleneckCounters('class htb 1:1 root'), /no htb class 1:10/);
});
