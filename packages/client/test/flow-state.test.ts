// The per-flow state without sockets: connect queue, lifetime, release, idleness.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttributeType, MessageBuilder, MessageClass, Method, errorCodeValue } from '@onionturn/protocol';
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

test('FlowState: upstream 401s and peer-policy 403s are counted (the status page names the failed step from them)', () => {
  const f = new FlowState(0);
  const err = (method: number, code: number): Buffer =>
    new MessageBuilder(method, MessageClass.ErrorResponse).add(AttributeType.ErrorCode, errorCodeValue(code)).build();
  f.observeUpstreamStun(err(Method.Allocate, 401)); // the usual challenge
  assert.equal(f.unauthorized, 1);
  f.observeUpstreamStun(err(Method.Allocate, 401)); // the signed request refused
  assert.equal(f.unauthorized, 2);
  f.observeUpstreamStun(err(Method.CreatePermission, 403));
  f.observeUpstreamStun(err(Method.ChannelBind, 403));
  f.observeUpstreamStun(err(Method.Allocate, 403)); // not the peer policy
  assert.equal(f.peerRefused, 2);
  f.observeUpstreamStun(err(Method.Allocate, 486));
  assert.deepEqual([f.unauthorized, f.peerRefused], [2, 2]);
});
