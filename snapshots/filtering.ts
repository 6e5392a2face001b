/** `retap snapshot filter`: keep the exchanges matching a FilterSpec, as a new version. */
import { type DeriveOutput, type Derived, label, writeDerived } from './derive.js';
import { compileFilter, type FilterSpec } from './filter.js';
import { openSnapshot, type StoredLine } from './reader.js';

export async function filterSnapshot(
  source: string,
  spec: FilterSpec,
  out: DeriveOutput = {},
  notes: string[] = [],
): Promise<Derived & { read: number }> {
  const src = await openSnapshot(source);
  const keep = compileFilter(spec);
  let read = 0;
  const lines = (async function* (): AsyncGenerator<StoredLine> {
    for await (const l of src.lines()) {
      read++;
      if (keep(l.value)) yield l;
    }
  })();
  const derived = await writeDerived([src], lines, out, {
    transforms: await src.transforms(),
    tokens: await src.tokens(),
    notes: [`filtered from ${label(src)}: ${JSON.stringify(spec)}`, ...notes],
    counters: src.manifest.counters,
  });
  return { ...derived, read };
}
