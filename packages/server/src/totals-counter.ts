// A Prometheus counter fed from plain growing totals read at scrape time, one per set of label
// values: the relay path only adds to plain numbers and pays nothing for metrics; at each scrape
// the counter takes what grew since the last one. A label set is shown from its first scrape, at 0
// if nothing happened yet, so a rate() over it starts at the right place.
import { Counter, type Registry } from 'prom-client';

/** Label values (in the order of the counter's label names) and the total for them now. */
export type Totals = Iterable<readonly [labels: readonly string[], total: number]>;

export function totalsCounter(registry: Registry, name: string, help: string, labelNames: readonly string[], read: () => Totals): void {
  const last = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames: [...labelNames],
    registers: [registry],
    collect() {
      for (const [labels, total] of read()) {
        const key = labels.join('\u0000');
        const before = last.get(key);
        const values = Object.fromEntries(labelNames.map((n, i) => [n, labels[i] ?? '']));
        if (total > (before ?? 0)) this.inc(values, total - (before ?? 0));
        else if (before === undefined) this.inc(values, 0);
        last.set(key, total);
      }
    },
  });
}
