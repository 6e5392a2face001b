/** Public API of the snapshot subsystem (capture, runner, assertions and the CLI use only this). */
export type { Manifest, FileEntry, Counts, RouteCount, RedactionSummary } from './format.js';
export { FORMAT_VERSION, MANIFEST_FILE, EXCHANGES_FILE, TRANSFORMS_FILE, TOKENS_FILE } from './format.js';
export type { RedactionConfig, Redactor } from './redaction.js';
export { createRedactor } from './redaction.js';
export type { SnapshotWriter, WriterOptions, FinishExtra, SnapshotSource } from './writer.js';
export { createSnapshotWriter } from './writer.js';
export type { OpenedSnapshot, OpenOptions, StoredLine } from './reader.js';
export { openSnapshot } from './reader.js';
export type { TransformsFile, TokensFile } from './yamlfile.js';
export { listVersions, resolveSnapshot, snapshotRoot } from './store.js';
export type { SchemaIssue, SchemaName } from './schema.js';
export { schemaPath } from './schema.js';
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
export { encodeExchange, fromStored, toStored } from './format.js';
export { routeOf } from './stats.js';
export { readResults } from './results.js';
export { filterSnapshot } from './filtering.js';
export { mergeSnapshots } from './merge.js';
export type { DeriveOutput, Derived } from './derive.js';
export type { SnapshotDiff, RouteChange, ExchangeChange } from './diff.js';
export { diffSnapshots } from './diff.js';
export type { HarImportOptions, HarExportResult } from './har.js';
export { exportHar, importHar, exchangeToEntry, entryToExchange } from './har.js';
export { validateSnapshot } from './validate.js';
export { admit, problemOf } from './quarantine.js';
export type { ValidationReport } from './validate.js';
