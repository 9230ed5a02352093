// TURN mobility (RFC 8016) in the core: the ticket an Allocate asks for, and a Refresh from a new
// 5-tuple (a new TCP connection, here a new Tor stream) taking the allocation over with it. The
// relay addresses, permissions and channels stay; only the client side of the allocation moves.
import { AttributeType, ErrorCode, getAttribute, readAttribute, type MessageBuilder, type StunMessage } from '@onionturn/protocol';
import type { Allocation } from './allocation.js';
import type { AllocationTable } from './allocation-table.js';
import type { CoreEvents } from './core-options.js';
import type { MobilityTickets } from './mobility-tickets.js';
import type { Replies, Reply } from './replies.js';
import type { CoreStats } from './stats.js';

/** What mobility needs of the core; `tickets` undefined when the operator turned it off. */
export interface MobilityContext {
  readonly tickets: MobilityTickets | undefined;
  readonly table: AllocationTable;
  readonly replies: Replies;
  readonly options: { readonly events?: CoreEvents | undefined };
  readonly stats: CoreStats;
}

/** The request carries MOBILITY-TICKET (empty in Allocate, a ticket in Refresh). */
export function asksMobility(msg: StunMessage): boolean {
  return getAttribute(msg, AttributeType.MobilityTicket) !== undefined;
}

/**
 * --workers: a Refresh on a connection that holds nothing, with a ticket another worker made, goes
 * with its connection to that worker before any credential check here (the holder checks them,
 * with the nonce key all workers share). True when the connection was handed over; otherwise the
 * request goes on here, and takeOver answers for another worker's ticket.
 */
export function handedOff(ctx: MobilityContext, r: Reply, frame: Buffer): boolean {
  const link = r.client.link;
  if (link.handOff === undefined || ctx.tickets === undefined || r.client.allocation !== undefined || r.client.pendingAllocate !== undefined) return false;
  const attr = readAttribute(r.msg, AttributeType.MobilityTicket);
  if (!attr?.ok || attr.value.kind !== 'bytes') return false;
  const route = ctx.tickets.route(attr.value.bytes);
  if (typeof route !== 'number') return false;
  const result = link.handOff(route, frame);
  if (result === 'handed') {
    ctx.stats.handedOff++;
    ctx.options.events?.event('allocation-handed-off', { worker: route, transport: r.client.transport }, 'debug');
    return true;
  }
  r.handOff = result;
  return false;
}

/**
 * Only the newest ticket works, with one exception: the one before it works too while the
 * connection that got the newest is closed, or took the allocation over and has sent nothing
 * since. A take-over's answer (which carries the new ticket) can die with the stream it was sent
 * on, as when a failed relay takes down the client's new circuit with its old one, and the exit
 * may not tell us for a long while (a stream the client's tor gave up on stays open at the exit
 * until its circuit goes). The client then tries again, on another circuit, with the ticket it
 * has. Once the new connection has sent anything, its client had the answer (a shim sends
 * nothing on a take-over's stream before it), and the old ticket is dead. The same username must
 * sign it (checked below), and the allocation gets a fresh ticket.
 */
function ticketCurrent(alloc: Allocation, generation: number): boolean {
  const newest = alloc.mobilityGeneration;
  if (newest === generation) return true;
  return newest !== undefined && generation === newest - 1 && (alloc.client.closed || alloc.movedUnheard);
}

/** Adds a fresh ticket for `alloc` (the older ones stop working). */
export function addTicket(ctx: MobilityContext, alloc: Allocation, b: MessageBuilder): void {
  if (ctx.tickets === undefined) return;
  alloc.mobilityGeneration = (alloc.mobilityGeneration ?? 0) + 1;
  b.add(AttributeType.MobilityTicket, { kind: 'bytes', bytes: ctx.tickets.issue(alloc.id, alloc.mobilityGeneration) });
}

/**
 * A Refresh with a ticket from a 5-tuple that holds no allocation: the allocation the ticket names
 * now belongs to this client, or an error was sent and undefined comes back. 405 when mobility is
 * off; 400 for a ticket this server did not make (forged, damaged, made before a restart); 437 for
 * one whose allocation is gone or that an allocation's newer ticket replaced; 441 for another
 * username than the allocation's (RFC 8016 §3.2). With --workers, a ticket of another worker that
 * could not be handed there (see handedOff): 508 when the hand-over was refused for now (the
 * ticket still works on a new connection), else 437: the holder is gone, or the connection cannot
 * move (TLS, UDP: see README), so the allocation is out of this connection's reach.
 */
export function takeOver(ctx: MobilityContext, r: Reply): Allocation | undefined {
  if (ctx.tickets === undefined) {
    ctx.replies.error(r, ErrorCode.MobilityForbidden);
    return undefined;
  }
  const attr = readAttribute(r.msg, AttributeType.MobilityTicket);
  const content = attr?.ok && attr.value.kind === 'bytes' ? ctx.tickets.open(attr.value.bytes) : undefined;
  if (content === undefined) {
    ctx.replies.error(r, ErrorCode.BadRequest);
    return undefined;
  }
  const self = ctx.tickets.self;
  if (content.worker !== self.worker) {
    ctx.replies.error(r, r.handOff === 'busy' ? ErrorCode.InsufficientCapacity : ErrorCode.AllocationMismatch);
    return undefined;
  }
  const alloc = content.incarnation === self.incarnation ? ctx.table.byId(content.allocationId) : undefined;
  const refused =
    alloc === undefined || alloc.deleted
      ? 'allocation gone'
      : !ticketCurrent(alloc, content.generation)
        ? 'ticket replaced'
        : r.client.pendingAllocate !== undefined
          ? 'allocate pending on this connection'
          : undefined;
  if (alloc === undefined || refused !== undefined) {
    // Debug only: a client can repeat a stale ticket of its own at will. The holder's state says
    // which exception of ticketCurrent did not apply.
    ctx.options.events?.event(
      'mobility-refused',
      {
        reason: refused,
        ticket: content.generation,
        newest: alloc?.mobilityGeneration ?? null,
        holderClosed: alloc?.client.closed ?? null,
        holderHeard: alloc === undefined ? null : !alloc.movedUnheard,
        transport: r.client.transport,
      },
      'debug',
    );
    ctx.replies.error(r, ErrorCode.AllocationMismatch);
    return undefined;
  }
  if (r.auth === undefined || alloc.auth.username !== r.auth.username) {
    ctx.replies.error(r, ErrorCode.WrongCredentials);
    return undefined;
  }
  const old = alloc.client;
  if (old.allocation === alloc) {
    old.allocation = undefined;
    // The old 5-tuple keeps its connection (it may be half dead) but owns nothing now: the shell
    // treats it as one without an allocation and closes it by its idle deadline.
    if (!old.closed) old.link.released?.();
  }
  alloc.client = r.client;
  alloc.movedUnheard = true;
  alloc.allocateResponse = undefined;
  r.client.allocation = alloc;
  r.client.link.allocated?.();
  ctx.options.events?.event('allocation-moved', { allocation: alloc.id, transport: r.client.transport });
  return alloc;
}
