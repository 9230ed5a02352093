// The congested relay's namespaces as commands (no kernel): where each runs, the addresses and
// routes that join them, the queues on the router's links; and reading tc's counters back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BOTTLENECK_BULK_ADDRESS,
  BOTTLENECK_LAB_ADDRESS,
  BOTTLENECK_RELAY_ADDRESS,
  bottleneckNetworkCommands,
  parseQdiscCounters,
  queueBytes,
} from '../src/index.js';

const names = { relay: 'r-ns', router: 'm-ns' };
const tcp = { mtu: 1500, tcpRmem: '4096 8192 16384', tcpWmem: '4096 8192 16384' };
const text = (b = { rateKbps: 600, queueMs: 200 }): string[] =>
  bottleneckNetworkCommands(b, names, tcp).map((c) => `${c.ns ?? 'lab'}: ${c.command} ${c.args.join(' ')}`);

test('queue: the rate times the time, at least two full packets', () => {
  assert.equal(queueBytes({ rateKbps: 600, queueMs: 200 }), 15_000);
  assert.equal(queueBytes({ rateKbps: 600, queueMs: 1 }), 3028);
});

test('commands: the relay reached from the lab only through the router, whose two links are the bottleneck', () => {
  const cmds = text();
  // Both directions are limited in the router (queues that drop where the relay's uplink would):
  // the rate, shared by two classes with a drop-tail queue each, the bulk's relays' traffic
  // (by their address, either end) in one, the rest in the other.
  for (const dev of ['ot-mr', 'ot-ml']) {
    assert.ok(cmds.includes(`m-ns: tc qdisc add dev ${dev} root handle 1: htb default 10`), dev);
    assert.ok(cmds.includes(`m-ns: tc class add dev ${dev} parent 1: classid 1:1 htb rate 600kbit burst 3028 cburst 3028`), dev);
    for (const c of ['10', '20']) {
      assert.ok(
        cmds.includes(`m-ns: tc class add dev ${dev} parent 1:1 classid 1:${c} htb rate 300kbit ceil 600kbit burst 3028 cburst 3028 quantum 1514`),
        `${dev} 1:${c}`,
      );
      assert.ok(cmds.includes(`m-ns: tc qdisc add dev ${dev} parent 1:${c} bfifo limit 15000`), `${dev} 1:${c}`);
    }
    for (const end of ['src', 'dst'])
      assert.ok(
        cmds.includes(`m-ns: tc filter add dev ${dev} parent 1: protocol ip prio 1 u32 match ip ${end} ${BOTTLENECK_BULK_ADDRESS}/32 flowid 1:20`),
        `${dev} ${end}`,
      );
  }
  assert.ok(cmds.includes('m-ns: sysctl -q -w net.ipv4.ip_forward=1'));
  // Addresses and routes: the lab reaches the relay via the router, the relay everything via it.
  assert.ok(cmds.includes(`lab: ip addr add ${BOTTLENECK_LAB_ADDRESS}/24 dev ot-lm`));
  assert.ok(cmds.includes(`lab: ip addr add ${BOTTLENECK_BULK_ADDRESS}/24 dev ot-lm`));
  assert.ok(cmds.includes(`lab: ip route add ${BOTTLENECK_RELAY_ADDRESS}/32 via 10.77.1.254`));
  assert.ok(cmds.includes(`r-ns: ip addr add ${BOTTLENECK_RELAY_ADDRESS}/24 dev ot-rm`));
  assert.ok(cmds.includes('r-ns: ip route add default via 10.77.2.254'));
  // The relay's namespace has the lab's small TCP buffers.
  assert.ok(cmds.includes('r-ns: sysctl -q -w net.ipv4.tcp_rmem=4096 8192 16384 net.ipv4.tcp_wmem=4096 8192 16384'));
  // A link moves into its namespace before it gets its address there.
  const at = (c: string): number => cmds.indexOf(c);
  assert.ok(at('lab: ip link set ot-ml netns m-ns') < at('m-ns: ip addr add 10.77.1.254/24 dev ot-ml'));
  assert.ok(at('lab: ip link set ot-rm netns r-ns') < at(`r-ns: ip addr add ${BOTTLENECK_RELAY_ADDRESS}/24 dev ot-rm`));
  // The namespaces themselves (with lo up) are NetNamespace's: nothing here makes them.
  assert.ok(!cmds.some((c) => c.includes('netns add')));
  assert.throws(() => text({ rateKbps: 0, queueMs: 200 }), /rateKbps > 0/);
});

test("counters: bytes sent and drops of a link's htb (all classes) from tc's statistics", () => {
  const out = [
    'qdisc htb 1: root refcnt 2 r2q 10 default 0x10 direct_packets_stat 0 direct_qlen 1000',
    ' Sent 714598 bytes 858 pkt (dropped 837, overlimits 38 requeues 0) ',
    ' backlog 0b 0p requeues 0',
    'qdisc bfifo 8001: parent 1:10 limit 15000b',
    ' Sent 514598 bytes 600 pkt (dropped 500, overlimits 0 requeues 0) ',
  ].join('\n');
  assert.deepEqual(parseQdiscCounters(out), { sentBytes: 714_598, dropped: 837 });
  assert.throws(() => parseQdiscCounters('qdisc noqueue 0: root'), /no htb/);
});
