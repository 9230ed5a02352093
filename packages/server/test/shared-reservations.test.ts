// RESERVATION-TOKEN across workers without processes or sockets: two workers' Reservations and
// port pools joined by a router that does what the primary does. A token issued by one is claimed
// by the other, spent at the issuer, and its port goes back to the issuer's pool when the borrower
// frees it; an unknown token is answered at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortPool } from '../src/port-pool.js';
import { Reservations } from '../src/reservations.js';
import { SharedReservations, type ReservationMessage } from '../src/shared-reservations.js';

const random = { bytes: (n: number) => new Uint8Array(n).map((_, i) => i + 1), int: (min: number) => min };

function twoWorkers(): { a: { ports: PortPool; res: Reservations }; b: { ports: PortPool; res: Reservations }; now: { t: number } } {
  const now = { t: 1000 };
  const owner = new Map<string, number>();
  const exchanges: SharedReservations[] = [];
  const ranges = [
    [1000, 1009],
    [1010, 1019],
  ] as const;
  // What the primary does: remember issuers, route claims and answers, send ports home by range.
  const route = (from: number, m: ReservationMessage): void => {
    if (m.op === 'issued') owner.set(m.token, from);
    else if (m.op === 'withdrawn') owner.delete(m.token);
    else if (m.op === 'claim') {
      const o = owner.get(m.token);
      if (o === undefined) exchanges[from]?.apply({ op: 'lent', id: m.id });
      else exchanges[o]?.apply({ ...m, from });
    } else if (m.op === 'lent') exchanges[m.to as number]?.apply({ op: 'lent', id: m.id, ...(m.lent ? { lent: m.lent } : {}) });
    else if (m.op === 'home') exchanges[ranges.findIndex(([lo, hi]) => m.port >= lo && m.port <= hi)]?.apply(m);
  };
  const worker = (i: number): { ports: PortPool; res: Reservations } => {
    const ex = new SharedReservations((m) => route(i, m));
    exchanges[i] = ex;
    const [lo, hi] = ranges[i] as readonly [number, number];
    const ports = new PortPool(lo, hi, 0, random);
    const res = new Reservations(ports, random, ex);
    ports.foreign = (port) => ex.sendHome(port);
    ex.serve({ lend: (t) => res.lend(t, now.t), portHome: (port) => ports.give(port, now.t) });
    return { ports, res };
  };
  return { a: worker(0), b: worker(1), now };
}

test('a token issued by one worker is claimed by the other; the port goes home when freed', () => {
  const { a, b, now } = twoWorkers();
  const pair = a.ports.takePair(now.t) as [number, number];
  const token = a.res.add(pair[1], 'IPv4', 'alice', now.t).toString('hex');
  assert.equal(a.ports.available, 8);
  assert.equal(b.res.get(token), undefined, 'not known at the other worker');

  let claimed = false;
  b.res.claim(
    token,
    () => now.t,
    () => (claimed = true),
  );
  assert.equal(claimed, true);
  assert.deepEqual({ ...b.res.get(token), expiresAt: undefined }, { port: pair[1], family: 'IPv4', username: 'alice', expiresAt: undefined });
  assert.equal(b.res.countFor('alice'), 1, "the borrower counts it against the user's quota");
  assert.equal(a.res.get(token), undefined, 'spent at the issuer');
  assert.equal(a.res.countFor('alice'), 0);

  // The borrower never uses it: on expiry the port goes home, not into the borrower's pool.
  now.t += 31_000;
  b.res.expire(now.t);
  assert.equal(b.ports.available, 10, "the borrower's pool is untouched");
  a.ports.take(now.t); // releases what the (zero) quarantine holds, then takes one
  assert.equal(a.ports.available, 8, "the issuer's pool has the port back (9 free, one just taken)");
});

test('a token no worker knows is refused at once; a token is lent once', () => {
  const { a, b, now } = twoWorkers();
  let answered = 0;
  b.res.claim(
    'ffffffffffffffff',
    () => now.t,
    () => answered++,
  );
  assert.equal(answered, 1);
  assert.equal(b.res.get('ffffffffffffffff'), undefined);

  const pair = a.ports.takePair(now.t) as [number, number];
  const token = a.res.add(pair[1], 'IPv4', 'alice', now.t).toString('hex');
  const claim = (): void =>
    b.res.claim(
      token,
      () => now.t,
      () => undefined,
    );
  claim();
  b.res.use(token);
  claim();
  assert.equal(b.res.get(token), undefined, 'spent: a second claim finds nothing');
});
