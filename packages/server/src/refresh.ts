// Refresh (RFC 8656 §7.3): a new lifetime for the client's allocation, or its deletion with
// LIFETIME 0; and the lifetime rule Allocate shares.
import { AttributeType, ErrorCode, MessageClass, readAttribute, type StunMessage } from '@onionturn/protocol';
import type { AllocationTable } from './allocation-table.js';
import type { CoreOptions } from './core-options.js';
import type { Lifetimes } from './limits.js';
import { addTicket, asksMobility, takeOver, type MobilityContext } from './mobility.js';
import type { Replies, Reply } from './replies.js';
import type { CoreStats } from './stats.js';
import { echoDelayFeedback } from './delay-feedback.js';

/** What Refresh needs of the core. */
export interface RefreshContext extends MobilityContext {
  readonly options: Pick<CoreOptions, 'strictExpiry' | 'events'>;
  readonly life: Lifetimes;
  readonly stats: CoreStats;
  readonly replies: Replies;
  readonly table: AllocationTable;
  now(): number;
  /** Wall-clock ms: credentials only (see CoreOptions.wallNow). */
  wallNow(): number;
}

export function onRefresh(ctx: RefreshContext, r: Reply): void {
  const mobile = asksMobility(r.msg);
  // RFC 8016: a ticket from a 5-tuple without an allocation takes the ticket's allocation over.
  const alloc = r.client.allocation ?? (mobile ? takeOver(ctx, r) : ctx.replies.error(r, ErrorCode.AllocationMismatch));
  if (!alloc) return;
  // A ticket on the allocation's own 5-tuple is renewed (a mobile client always shows its ticket).
  const ticket = mobile && alloc.mobilityGeneration !== undefined;
  const fam = readAttribute(r.msg, AttributeType.RequestedAddressFamily);
  if (fam) {
    if (!fam.ok || fam.value.kind !== 'family') return ctx.replies.error(r, ErrorCode.BadRequest);
    if (!alloc.relayFor(fam.value.family)) return ctx.replies.error(r, ErrorCode.PeerAddressFamilyMismatch);
  }
  const now = ctx.now();
  const requested = grantedLifetime(ctx.life, r.msg, false);
  if (requested === 0) {
    // Deleting is always allowed, also with an expired credential.
    ctx.replies.success(r, (b) => b.add(AttributeType.Lifetime, { kind: 'uint32', value: 0 }));
    ctx.table.delete(alloc, 'refresh-0');
    return;
  }
  const lifetime = credentialBound(ctx.options, alloc.auth.credentialExpiresAt, ctx.wallNow(), requested);
  if (lifetime === 0) {
    ctx.stats.authFailures++;
    return ctx.replies.challenge(r, ErrorCode.Unauthorized);
  }
  alloc.expiresAt = now + lifetime * 1000;
  const response = ctx.replies.build(r, MessageClass.SuccessResponse, (b) => {
    b.add(AttributeType.Lifetime, { kind: 'uint32', value: lifetime });
    if (ticket) addTicket(ctx, alloc, b);
  });
  // The take-over Refresh of a shim on its new stream offers the delay extension again.
  r.client.link.sendMessage(echoDelayFeedback(r.client, r.msg, response));
}

/**
 * With strict expiry (the default) an allocation lives no longer than its credential: the
 * lifetime is cut to the credential's remaining seconds, 0 once it has expired. The username
 * cannot change on an allocation (441), so the credential's lifetime is the longest call.
 */
export function credentialBound(options: Pick<CoreOptions, 'strictExpiry'>, expiresAtMs: number | undefined, wallNow: number, lifetime: number): number {
  if (options.strictExpiry === false || expiresAtMs === undefined) return lifetime;
  return Math.max(0, Math.min(lifetime, Math.ceil((expiresAtMs - wallNow) / 1000)));
}

/** The lifetime in seconds an Allocate (`allocate`) or Refresh is granted for its LIFETIME. */
export function grantedLifetime(life: Lifetimes, msg: StunMessage, allocate: boolean): number {
  const attr = readAttribute(msg, AttributeType.Lifetime);
  const req = attr?.ok && attr.value.kind === 'uint32' ? attr.value.value : undefined;
  const { allocationDefaultSec: def, allocationMaxSec: max } = life;
  if (req === undefined) return def;
  // Allocate: at least the default (RFC 8656 §7.2); Refresh: what was asked, up to the maximum.
  if (!allocate) return Math.min(req, max);
  return Math.min(Math.max(req, def), max);
}
