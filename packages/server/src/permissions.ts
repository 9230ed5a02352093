// CreatePermission and ChannelBind (RFC 8656 §9, §12): the XOR-PEER-ADDRESS list checked for
// family and peer policy, permissions installed all or nothing under the quotas, and channels
// bound one-to-one to a peer ip:port.
import { AttributeType, ErrorCode, formatIp, isValidChannelNumber, parseIp, readAttribute, readAttributes, type TransportAddress } from '@onionturn/protocol';
import { Channel, Permission, type Allocation, type Peer, type Relay } from './allocation.js';
import type { CoreOptions } from './core-options.js';
import type { Lifetimes, Limits } from './limits.js';
import type { Replies, Reply } from './replies.js';
import type { CoreStats } from './stats.js';

/** What CreatePermission and ChannelBind need of the core. */
export interface PermissionContext {
  readonly options: Pick<CoreOptions, 'channelRange' | 'events'>;
  readonly life: Lifetimes;
  readonly limits: Limits;
  readonly stats: CoreStats;
  readonly replies: Replies;
  now(): number;
  /** The peer policy in force (SIGHUP swaps it). */
  peerAllowed(ip: Buffer, port: number): boolean;
  /** Makes a peer under a permission; undefined when the policy or a quota stops it. */
  newPeer(alloc: Allocation, perm: Permission, port: number, now: number): Peer | undefined;
}

interface RequestedPeer {
  readonly addr: TransportAddress;
  readonly ip: Buffer;
  readonly relay: Relay;
}

/** True for an IPv4-mapped IPv6 address, ::ffff:0:0/96 (RFC 4291 §2.5.5.2). */
function isIpv4Mapped(ip: Buffer): boolean {
  if (ip.length !== 16 || ip[10] !== 0xff || ip[11] !== 0xff) return false;
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return false;
  return true;
}

export function onCreatePermission(ctx: PermissionContext, r: Reply): void {
  const alloc = r.client.allocation;
  if (!alloc) return ctx.replies.error(r, ErrorCode.AllocationMismatch);
  const peers = requestedPeers(ctx, r, alloc);
  if (!peers) return;
  const now = ctx.now();
  // All or nothing: every quota is checked for the whole list before any permission is made.
  const fresh = new Set<string>();
  for (const p of peers) {
    const key = formatIp(p.ip);
    if (!alloc.permissions.has(key)) fresh.add(key);
  }
  if (alloc.permissions.size + fresh.size > ctx.limits.permissionsPerAllocation) {
    ctx.stats.countQuota('permissions');
    return ctx.replies.error(r, ErrorCode.InsufficientCapacity);
  }
  if (fresh.size > 0 && !alloc.newPeers.take(fresh.size, now)) {
    ctx.stats.countQuota('new-peer-rate');
    return ctx.replies.error(r, ErrorCode.InsufficientCapacity);
  }
  const expiresAt = now + ctx.life.permissionSec * 1000;
  for (const p of peers) {
    const key = formatIp(p.ip);
    const existing = alloc.permissions.get(key);
    if (existing) existing.expiresAt = expiresAt;
    else alloc.permissions.set(key, new Permission(key, p.ip, p.relay, expiresAt));
  }
  ctx.replies.success(r, () => undefined);
}

export function onChannelBind(ctx: PermissionContext, r: Reply): void {
  const alloc = r.client.allocation;
  if (!alloc) return ctx.replies.error(r, ErrorCode.AllocationMismatch);
  const chAttr = readAttribute(r.msg, AttributeType.ChannelNumber);
  if (!chAttr?.ok || chAttr.value.kind !== 'channel-number' || !channelAllowed(ctx, chAttr.value.channel)) {
    return ctx.replies.error(r, ErrorCode.BadRequest);
  }
  const number = chAttr.value.channel;
  const peers = requestedPeers(ctx, r, alloc);
  if (!peers) return;
  const { addr, ip, relay } = peers[0] as RequestedPeer;
  // Port 0 is no UDP destination (the send would fail): a channel needs a real transport address.
  if (addr.port === 0) return ctx.replies.error(r, ErrorCode.BadRequest);
  const now = ctx.now();
  const key = formatIp(ip);
  const bound = alloc.channels?.get(number);
  const existingPerm = alloc.permissions.get(key);
  const existingPeer = existingPerm?.peers.get(addr.port);
  // A channel belongs to one peer, a peer to one channel, until the channel is long gone.
  if (bound && bound.peer !== existingPeer) return ctx.replies.error(r, ErrorCode.BadRequest);
  if (existingPeer?.channel && existingPeer.channel.number !== number) return ctx.replies.error(r, ErrorCode.BadRequest);
  if (!bound && (alloc.channels?.size ?? 0) >= ctx.limits.channelsPerAllocation) {
    ctx.stats.countQuota('channels');
    return ctx.replies.error(r, ErrorCode.InsufficientCapacity);
  }
  const perm = permission(ctx, alloc, ip, relay, now);
  if (!perm) return ctx.replies.error(r, ErrorCode.InsufficientCapacity);
  const peer = perm.peers.get(addr.port) ?? ctx.newPeer(alloc, perm, addr.port, now);
  if (!peer) return ctx.replies.error(r, ErrorCode.InsufficientCapacity);
  const expiresAt = now + ctx.life.channelSec * 1000;
  // The client names this exact ip:port: it may answer first (the other side of a call often
  // speaks before this client has sent anything). Nothing is sent, so consent is not touched.
  peer.lastSentAt = now;
  if (bound) bound.expiresAt = expiresAt;
  else {
    const ch = new Channel(number, peer, expiresAt);
    peer.channel = ch;
    (alloc.channels ??= new Map()).set(number, ch);
  }
  ctx.replies.success(r, () => undefined);
}

function channelAllowed(ctx: PermissionContext, n: number): boolean {
  if (ctx.options.channelRange === 'rfc8656') return isValidChannelNumber(n);
  return n >= 0x4000 && n <= 0x7fff;
}

/** Peer addresses of a request, checked for family and policy; sends the error and returns undefined if any fails. */
function requestedPeers(ctx: PermissionContext, r: Reply, alloc: Allocation): RequestedPeer[] | undefined {
  const attrs = readAttributes(r.msg, AttributeType.XorPeerAddress);
  if (attrs.length === 0) {
    ctx.replies.error(r, ErrorCode.BadRequest);
    return undefined;
  }
  const out: RequestedPeer[] = [];
  for (const a of attrs) {
    if (!a.ok || a.value.kind !== 'address') {
      ctx.replies.error(r, ErrorCode.BadRequest);
      return undefined;
    }
    const addr = a.value.address;
    const relay = alloc.relayFor(addr.family);
    if (!relay) {
      ctx.replies.error(r, ErrorCode.PeerAddressFamilyMismatch);
      return undefined;
    }
    const ip = parseIp(addr.address) as Buffer;
    if (!ctx.peerAllowed(ip, addr.port)) {
      ctx.stats.deniedPeers++;
      ctx.options.events?.event('peer-denied', { allocation: alloc.id, peer: `${addr.address}:${addr.port}` }, 'debug');
      ctx.replies.error(r, ErrorCode.Forbidden);
      return undefined;
    }
    // ::ffff:a.b.c.d is an IPv4 peer in IPv6 spelling: a datagram to it leaves as IPv4, which a
    // relay socket bound to an IPv6 address cannot send (ENETUNREACH), so the permission would
    // succeed and relay nothing. It is a peer of the other family (443). After the policy, so
    // a denied address is 403 however it is spelled.
    if (isIpv4Mapped(ip)) {
      ctx.replies.error(r, ErrorCode.PeerAddressFamilyMismatch);
      return undefined;
    }
    out.push({ addr, ip, relay });
  }
  return out;
}

/** Finds or installs the permission for a peer address; undefined when a quota stops it. */
function permission(ctx: PermissionContext, alloc: Allocation, ip: Buffer, relay: Relay, now: number): Permission | undefined {
  const key = formatIp(ip);
  const existing = alloc.permissions.get(key);
  const expiresAt = now + ctx.life.permissionSec * 1000;
  if (existing) {
    existing.expiresAt = expiresAt;
    return existing;
  }
  if (alloc.permissions.size >= ctx.limits.permissionsPerAllocation) {
    ctx.stats.countQuota('permissions');
    return undefined;
  }
  if (!alloc.newPeers.take(1, now)) {
    ctx.stats.countQuota('new-peer-rate');
    return undefined;
  }
  const perm = new Permission(key, ip, relay, expiresAt);
  alloc.permissions.set(key, perm);
  return perm;
}
