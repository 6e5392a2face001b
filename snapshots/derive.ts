/** Writing a new version derived from existing ones (filter, merge): lineage, side files, redaction record. */
import { fromStored, type Manifest } from './format.js';
import type { OpenedSnapshot, StoredLine } from './reader.js';
import type { RedactionConfig } from './redaction.js';
import { storeOf } from './store.js';
import { createSnapshotWriter } from './writer.js';
import type { TokensFile, TransformsFile } from './yamlfile.js';

export interface DeriveOutput {
  /** Store or `vN` directory; default: the first source's store (next version). */
  dir?: string;
  name?: string;
  gzip?: boolean;
  redaction?: RedactionConfig | false;
  onProgress?: (done: number) => void;
}

export interface Derived {
  manifest: Manifest;
  path: string;
  written: number;
}

export async function writeDerived(
  sources: OpenedSnapshot[],
  lines: AsyncIterable<StoredLine>,
  out: DeriveOutput,
  side: {
    transforms: TransformsFile;
    tokens: TokensFile;
    notes: string[];
    counters?: Record<string, number>;
    /** Notes known only after all lines went through (conflicts found by a merge). */
    lateNotes?: () => string[];
  },
): Promise<Derived> {
  const first = sources[0]!;
  const w = await createSnapshotWriter({
    dir: out.dir ?? storeOf(first.path),
    name: out.name ?? first.manifest.name,
    source: first.manifest.source,
    gzip: out.gzip ?? first.manifest.files.exchanges.gzip === true,
    redaction: out.redaction,
    parent: first.path,
    transforms: side.transforms,
    tokens: side.tokens,
    inheritedRedaction: sources.map((s) => s.manifest.redaction),
    notes: side.notes,
  });
  let written = 0;
  try {
    for await (const l of lines) {
      await w.append(fromStored(l.value));
      written++;
      if (out.onProgress && written % 10_000 === 0) out.onProgress(written);
    }
    const manifest = await w.finish({ counters: side.counters ?? {}, notes: side.lateNotes?.() ?? [] });
    return { manifest, path: w.path, written };
  } catch (e) {
    await w.abort();
    throw e;
  }
}

export function label(s: OpenedSnapshot): string {
  return `${s.manifest.name}@v${s.manifest.version} (${s.manifest.hash.slice(7, 19)})`;
}
