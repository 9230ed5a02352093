// The per-flow state without sockets: connect queue, lifetime, release, idleness.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttributeType, MessageBuilder, MessageClass, Method } from '@onionturn/protocol';
import { FlowState } from '../src/flow-state.js';

test('FlowState: bounded queue, lifetime from responses, Refresh 0 releases, idle after lifetime', () => {
  const f = new FlowState(0, { maxDatagrams: 2, maxBytes: 100 });
  assert.equal(f.enqueue(Buffer.alloc(10)), true);
  assert.equal(f.enqueue(Buffer.alloc(10)), true);
  assert.equal(f.enqueue(Buffer.alloc(10)), false);
  assert.equal(f.queueDropped, 1);
  assert.equal(f.open().length, 2);
  assert.equal(f.phase, 'open');
  const alloc = new MessageBuilder(Method.Allocate, MessageClass.SuccessResponse).add(AttributeType.Lifetime, { kind: 'uint32', value: 60 }).build();
  assert.equal(f.observeUpstreamStun(alloc), false);
  assert.equal(f.lifetimeS, 60);
  assert.equal(f.idleExpired(60_000), false);
  assert.equal(f.idleExpired(91_000), true);
  const refresh0 = new MessageBuilder(Method.Refresh, MessageClass.SuccessResponse).add(AttributeType.Lifetime, { kind: 'uint32', value: 0 }).build();
  assert.equal(f.observeUpstreamStun(refresh0), true);
  const refreshReq0 = new MessageBuilder(Method.Refresh, MessageClass.Request).add(AttributeType.Lifetime, { kind: 'uint32', value: 0 }).build();
  assert.equal(new FlowState(0).observeUpstreamStun(refreshReq0), false);
});
