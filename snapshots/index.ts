/**
 * Public API of the snapshot subsystem: outside snapshots/, code imports only this file or its
 * replay-time part, `replay.ts` (re-exported here); core/layers.test.ts holds every file to it.
 */
export * from './replay.js';
export type { Manifest, FileEntry, Counts, RouteCount, RedactionSummary } from './format.js';
export { FORMAT_VERSION, MANIFEST_FILE, EXCHANGES_FILE, TRANSFORMS_FILE, TOKENS_FILE } from './format.js';
export type { SnapshotWriter, WriterOptions, FinishExtra, SnapshotSource } from './writer.js';
export { createSnapshotWriter } from './writer.js';
export type { OpenedSnapshot, OpenOptions, StoredLine } from './reader.js';
export { openSnapshot, readManifest } from './reader.js';
export { listVersions, resolveSnapshot, snapshotRoot } from './store.js';
export type { SchemaIssue, SchemaName } from './schema.js';
export { formatIssue, schemaPath } from './schema.js';
export type { CompiledFilter, ExchangeSummary, FilterSpec } from './filter.js';
export {
  compileFilter,
  compileFilterParts,
  foldText,
  hostOfStored,
  parseJsonPath,
  parseTimeUs,
  searchableTexts,
  serviceOfStored,
  summarize,
} from './filter.js';
export { routeOf } from './stats.js';
export { linkCalls, markOpeningCalls } from './links.js';
export { filterSnapshot } from './filtering.js';
export { mergeSnapshots } from './merge.js';
export type { DeriveOutput, Derived } from './derive.js';
export { label, writeDerived } from './derive.js';
export type { SnapshotDiff, RouteChange, ExchangeChange } from './diff.js';
export { diffSnapshots } from './diff.js';
export type { HarImportOptions, HarExportResult } from './har.js';
export { exportHar, importHar, exchangeToEntry, entryToExchange } from './har.js';
export { validateSnapshot } from './validate.js';
export { admit, problemOf } from './quarantine.js';
export type { ValidationReport } from './validate.js';
export type { TokenEntry } from './tokens/index.js';
export { loadTransformsText, type Rule } from './transforms/index.js';
export { checkTransforms } from './transforms/check.js';
export { toYaml } from './yamlfile.js';
export { PLACEHOLDER_IN_TEXT } from './redaction/rules.js';
