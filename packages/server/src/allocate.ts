// Allocate (RFC 8656 §7.2): checks the request (transport, EVEN-PORT, RESERVATION-TOKEN, address
// families) and the quotas, then binds one relay socket per family through the shell and answers
// once all are bound; the answer is kept for retransmissions.
import { echoDelayFeedback } from './delay-feedback.js';
import {
  AttributeType,
  ErrorCode,
  MessageClass,
  TransportProtocol,
  decodeMessage,
  formatIp,
  getAttribute,
  parseIp,
  readAttribute,
  type IpFamily,
} from '@onionturn/protocol';
import { Allocation, Relay } from './allocation.js';
import type { AllocationTable } from './allocation-table.js';
import type { Authenticated } from './authenticate.js';
import type { CoreOptions, RelayAddress } from './core-options.js';
import type { Lifetimes, Limits } from './limits.js';
import { addTicket, asksMobility, type MobilityContext } from './mobility.js';
import { credentialBound, grantedLifetime } from './refresh.js';
import type { Replies, Reply } from './replies.js';
import { lastTextMemo } from './last-text-memo.js';
import type { LiveRelays } from './relay-registry.js';
import type { Reservation, Reservations } from './reservations.js';
import type { CoreStats } from './stats.js';

const PORT_BIND_ATTEMPTS = 16;

interface PortChoice {
  readonly port: number;
  /** The next port, kept for a later Allocate with RESERVATION-TOKEN. */
  readonly reserve?: number;
}

/** What Allocate needs of the core. */
export interface AllocateContext extends MobilityContext {
  readonly options: Pick<CoreOptions, 'realm' | 'relay4' | 'relay6' | 'ports' | 'binder' | 'events' | 'strictExpiry'>;
  readonly life: Lifetimes;
  readonly limits: Limits;
  readonly stats: CoreStats;
  readonly replies: Replies;
  readonly table: AllocationTable;
  readonly reservations: Reservations;
  readonly relays: LiveRelays;
  now(): number;
  /** Wall-clock ms: credentials only (see CoreOptions.wallNow). */
  wallNow(): number;
}

/** `claimed`: the request comes again after asking the other workers for its token. */
export function onAllocate(ctx: AllocateContext, r: Reply, claimed = false): void {
  const { client, msg } = r;
  const auth = r.auth as Authenticated;
  if (client.allocation) {
    const a = client.allocation;
    const sent = a.allocateResponse;
    // The response carries the request's transaction id (bytes 8-19).
    if (sent !== undefined && msg.transactionId.compare(sent, 8, 20) === 0) {
      client.link.sendMessage(sent);
      return;
    }
    return ctx.replies.error(r, ErrorCode.AllocationMismatch);
  }
  if (client.pendingAllocate) {
    if (client.pendingAllocate.equals(msg.transactionId)) return; // retransmission while binding
    return ctx.replies.error(r, ErrorCode.AllocationMismatch);
  }
  const transport = readAttribute(msg, AttributeType.RequestedTransport);
  if (!transport?.ok || transport.value.kind !== 'requested-transport') return ctx.replies.error(r, ErrorCode.BadRequest);
  if (transport.value.protocol !== TransportProtocol.UDP) return ctx.replies.error(r, ErrorCode.UnsupportedTransportProtocol);
  const mobile = asksMobility(msg);
  if (mobile && ctx.tickets === undefined) return ctx.replies.error(r, ErrorCode.MobilityForbidden);
  const token = getAttribute(msg, AttributeType.ReservationToken);
  const evenPort = readAttribute(msg, AttributeType.EvenPort);
  const requested = readAttribute(msg, AttributeType.RequestedAddressFamily);
  const additional = readAttribute(msg, AttributeType.AdditionalAddressFamily);
  // RFC 8656 §7.2: a token names a reserved address, so it comes with no family or port wishes.
  if (token && (evenPort || requested || additional)) return ctx.replies.error(r, ErrorCode.BadRequest);
  if (requested && additional) return ctx.replies.error(r, ErrorCode.BadRequest);
  if ((requested && !requested.ok) || (additional && !additional.ok) || (evenPort && !evenPort.ok)) {
    return ctx.replies.error(r, ErrorCode.BadRequest);
  }
  let reserved: Reservation | undefined;
  const tokenKey = token?.value.toString('hex');
  if (tokenKey !== undefined) {
    // A token is good once, for the port kept next to an earlier EVEN-PORT allocation; it is
    // used up only once every check below has passed, so a refused request keeps it.
    reserved = ctx.reservations.get(tokenKey);
    if (!reserved && !claimed && ctx.reservations.shared) {
      // Another worker's token (the client's new connection reached this one): ask for it, then
      // take the request again (a copy: the message is a view into the connection's input).
      const again = decodeMessage(Buffer.from(msg.raw));
      ctx.reservations.claim(tokenKey, ctx.now, () => {
        if (!client.closed && again.ok) onAllocate(ctx, { ...r, msg: again.value }, true);
      });
      return;
    }
    if (!reserved || reserved.expiresAt <= ctx.now()) return ctx.replies.error(r, ErrorCode.InsufficientCapacity);
  }
  const reservePair = evenPort?.ok === true && evenPort.value.kind === 'even-port' && evenPort.value.reserve;
  // RFC 8656 §7.2 step 8: one reservation token cannot stand for a pair in each of two families.
  if (reservePair && additional) return ctx.replies.error(r, ErrorCode.BadRequest);
  // A token's allocation has the family of the one that reserved it (an IPv6 RTCP port pair
  // stays IPv6), not the IPv4 default.
  let families: IpFamily[] = reserved ? [reserved.family] : ['IPv4'];
  let v6Unavailable = false;
  if (requested?.ok && requested.value.kind === 'family') families = [requested.value.family];
  if (additional?.ok && additional.value.kind === 'family') {
    // ADDITIONAL-ADDRESS-FAMILY may only ask for IPv6 in addition to IPv4.
    if (additional.value.family !== 'IPv6') return ctx.replies.error(r, ErrorCode.BadRequest);
    if (ctx.options.relay6) families = ['IPv4', 'IPv6'];
    else v6Unavailable = true;
  }
  for (const f of families) {
    if (!(f === 'IPv4' ? ctx.options.relay4 : ctx.options.relay6)) return ctx.replies.error(r, ErrorCode.AddressFamilyNotSupported);
  }
  const now = ctx.now();
  const cred = auth.credential;
  const wallNow = ctx.wallNow();
  if (cred?.expiresAtMs !== undefined && cred.expiresAtMs <= wallNow) {
    ctx.stats.authFailures++;
    return ctx.replies.challenge(r, ErrorCode.Unauthorized);
  }
  // Ports held in reservations count too (a token of this user's own turns one into the other).
  const held = ctx.table.countFor(auth.username) + ctx.reservations.countFor(auth.username) - (reserved?.username === auth.username ? 1 : 0);
  if (held >= ctx.limits.allocationsPerUser) {
    ctx.stats.countQuota('allocations-per-user');
    return ctx.replies.error(r, ErrorCode.AllocationQuotaReached);
  }
  if (ctx.table.size >= ctx.limits.allocations) {
    ctx.stats.countQuota('allocations');
    return ctx.replies.error(r, ErrorCode.InsufficientCapacity);
  }
  if (tokenKey !== undefined) ctx.reservations.use(tokenKey);
  // The credential was checked above to be valid now, so this is at least a second.
  const lifetime = credentialBound(ctx.options, cred?.expiresAtMs, wallNow, grantedLifetime(ctx.life, msg, true));
  const alloc = new Allocation(
    ctx.table.newId(),
    client,
    {
      username: auth.username,
      realm: ctx.options.realm,
      password: auth.password,
      key: auth.key,
      algorithm: auth.algorithm,
      credentialExpiresAt: cred?.expiresAtMs,
    },
    now + lifetime * 1000,
    now,
    ctx.limits.bandwidthPerAllocation,
    ctx.limits.newPeersPerSecond,
  );
  const pick = (): PortChoice | undefined => {
    if (reserved) {
      const port = reserved.port;
      reserved = undefined; // one attempt: the reserved port or nothing
      return port === undefined ? undefined : { port };
    }
    if (reservePair) {
      const pair = ctx.options.ports.takePair(ctx.now());
      return pair && { port: pair[0], reserve: pair[1] };
    }
    const port = ctx.options.ports.take(ctx.now(), evenPort !== undefined);
    return port === undefined ? undefined : { port };
  };
  client.pendingAllocate = Buffer.from(msg.transactionId);
  // Quotas count the allocation from now on, so parallel requests cannot overshoot.
  ctx.table.add(alloc);
  let waiting = families.length;
  let failed = false;
  const finished = (): void => {
    client.pendingAllocate = undefined;
    if (alloc.deleted) return; // shut down meanwhile: no answer, its sockets are closed
    if (failed || client.closed) {
      ctx.table.delete(alloc, failed ? 'no-port' : 'client-closed', false);
      if (failed && !client.closed) {
        ctx.stats.countQuota('relay-ports');
        ctx.replies.error(r, ErrorCode.InsufficientCapacity);
      }
      return;
    }
    client.allocation = alloc;
    client.link.allocated?.();
    ctx.stats.allocationsCreated++;
    const response = ctx.replies.build(r, MessageClass.SuccessResponse, (b) => {
      for (const relay of [alloc.relay4, alloc.relay6]) {
        if (relay) b.add(AttributeType.XorRelayedAddress, { kind: 'address', address: relay.external });
      }
      if (alloc.reservationToken) b.add(AttributeType.ReservationToken, { kind: 'bytes', bytes: alloc.reservationToken });
      if (v6Unavailable) {
        b.add(AttributeType.AddressErrorCode, { kind: 'address-error-code', family: 'IPv6', code: 440, reason: 'Address Family not Supported' });
      }
      b.add(AttributeType.Lifetime, { kind: 'uint32', value: lifetime });
      b.add(AttributeType.XorMappedAddress, { kind: 'address', address: client.remote });
      if (mobile) addTicket(ctx, alloc, b);
    });
    // Only a UDP client retransmits; over TCP and TLS a repeated Allocate gets 437.
    if (client.transport === 'udp') alloc.allocateResponse = response;
    client.link.sendMessage(echoDelayFeedback(client, msg, response));
    ctx.options.events?.event('allocation-created', {
      allocation: alloc.id,
      transport: client.transport,
      lifetime,
      username: auth.username,
      client: `${client.remote.address}:${client.remote.port}`,
    });
  };
  for (const family of families) {
    bindRelay(ctx, alloc, family, pick, PORT_BIND_ATTEMPTS, (ok) => {
      if (!ok) failed = true;
      if (--waiting === 0) finished();
    });
  }
}

/** The same address in the text peers' datagrams are reported in (an operator may write 2001:db8:0::1). */
const canonicalIp = lastTextMemo((text: string): string => {
  const ip = parseIp(text);
  return ip ? formatIp(ip) : text;
});

function bindRelay(
  ctx: AllocateContext,
  alloc: Allocation,
  family: IpFamily,
  pick: () => PortChoice | undefined,
  attempts: number,
  done: (ok: boolean) => void,
): void {
  const addr = (family === 'IPv4' ? ctx.options.relay4 : ctx.options.relay6) as RelayAddress;
  const choice = pick();
  if (choice === undefined) return done(false);
  const { port, reserve } = choice;
  const relay = new Relay(alloc, family, addr.bind, port, { family, address: canonicalIp(addr.external), port });
  ctx.options.binder.bind(relay, (socket) => {
    if (alloc.deleted) {
      // Deleted while this socket was being bound (shutdown, or the allocation gone): nobody
      // would ever close it, so it and its ports go straight back (and other workers forget it).
      socket?.close();
      if (socket) ctx.relays.remove(relay);
      ctx.options.ports.give(port, ctx.now());
      if (reserve !== undefined) ctx.options.ports.give(reserve, ctx.now());
      return done(false);
    }
    if (socket === undefined) {
      // In use by someone else: like a released port, it is tried again after the quarantine.
      ctx.options.ports.give(port, ctx.now());
      if (reserve !== undefined) ctx.options.ports.give(reserve, ctx.now());
      if (attempts > 1) return bindRelay(ctx, alloc, family, pick, attempts - 1, done);
      return done(false);
    }
    relay.socket = socket;
    ctx.relays.add(relay);
    if (family === 'IPv4') alloc.relay4 = relay;
    else alloc.relay6 = relay;
    if (reserve !== undefined) alloc.reservationToken = ctx.reservations.add(reserve, family, alloc.auth.username, ctx.now());
    done(true);
  });
}
