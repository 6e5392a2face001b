/**
 * `retap snapshot merge`: one version holding the exchanges of several. Sources are each sorted,
 * so a k-way merge streams them; a line identical to one already taken (same key, same bytes)
 * is dropped, and same id + start time with different content is kept and counted as a conflict.
 */
import { type DeriveOutput, type Derived, label, writeDerived } from './derive.js';
import { compareEntries } from './sorter.js';
import { type OpenedSnapshot, openSnapshot, type StoredLine } from './reader.js';
import type { TokensFile, TransformsFile } from './yamlfile.js';

function unionById<T extends { id: string }>(lists: T[][], notes: string[], what: string): T[] {
  const byId = new Map<string, T>();
  for (const list of lists) {
    for (const item of list) {
      const prev = byId.get(item.id);
      if (prev === undefined) byId.set(item.id, item);
      else if (JSON.stringify(prev) !== JSON.stringify(item)) notes.push(`${what} '${item.id}' differs between sources; kept the first`);
    }
  }
  return [...byId.values()];
}

export async function mergeSnapshots(paths: string[], out: DeriveOutput = {}): Promise<Derived & { duplicates: number; conflicts: number }> {
  const sources: OpenedSnapshot[] = [];
  for (const p of paths) sources.push(await openSnapshot(p));
  let duplicates = 0;
  let conflicts = 0;
  const lines = (async function* (): AsyncGenerator<StoredLine> {
    const its = sources.map((s) => s.lines()[Symbol.asyncIterator]());
    const heads: Array<StoredLine | undefined> = [];
    for (const it of its) heads.push((await it.next()).value as StoredLine | undefined);
    const key = (l: StoredLine) => ({ us: l.us, id: l.id, line: l.text });
    let last: StoredLine | undefined;
    const seenAtKey = new Set<string>();
    for (;;) {
      let best = -1;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i];
        if (h !== undefined && (best === -1 || compareEntries(key(h), key(heads[best]!)) < 0)) best = i;
      }
      if (best === -1) break;
      const cur = heads[best]!;
      const r = await its[best]!.next();
      heads[best] = r.done ? undefined : r.value;
      if (last && last.us === cur.us && last.id === cur.id) {
        if (seenAtKey.has(cur.text)) {
          duplicates++;
          continue;
        }
        conflicts++;
      } else seenAtKey.clear();
      seenAtKey.add(cur.text);
      last = cur;
      yield cur;
    }
  })();
  const notes = [`merged from ${sources.map(label).join(', ')}`];
  const transformsList = await Promise.all(sources.map((s) => s.transforms()));
  const tokensList = await Promise.all(sources.map((s) => s.tokens()));
  const transforms: TransformsFile = { version: 1, rules: unionById(transformsList.map((t) => t.rules), notes, 'transform rule') };
  const tokens: TokensFile = { version: 1, tokens: unionById(tokensList.map((t) => t.tokens), notes, 'token') };
  const counters: Record<string, number> = {};
  for (const s of sources) for (const [k, v] of Object.entries(s.manifest.counters)) counters[k] = (counters[k] ?? 0) + v;
  const lateNotes = () => (conflicts > 0 ? [`${conflicts} exchange(s) share id and start time with different content`] : []);
  const derived = await writeDerived(sources, lines, out, { transforms, tokens, notes, counters, lateNotes });
  return { ...derived, duplicates, conflicts };
}
