/**
 * The snapshot package's surface for replay time: what the runner's worker (mocks, driver, secrets
 * and results inside the namespace) needs of snapshots, and nothing of the store (reading and
 * writing snapshots, HAR, diffs, filters). A worker starts per replay, so it loads only these
 * modules; everything else outside snapshots/ imports `index.ts`, which re-exports this file.
 */
export type { TokensFile, TransformsFile } from './yamlfile.js';
export { encodeExchange, fromStored, type RedactionRules, toStored } from './format.js';
export { readResults, tooLarge, writeResults } from './results.js';
export { createRedactor, PLACEHOLDER, type RedactionConfig, type Redactor } from './redaction.js';
export { unguessable } from './redaction/rules.js';
export {
  loadSecrets,
  missingSecretsError,
  restoreRequest,
  type SecretNeed,
  type Secrets,
  secretNeeds,
} from './secrets.js';
export {
  createMockContext,
  createReplayContext,
  type LiveRequest,
  type LiveResponse,
} from './transforms/index.js';
export { discoverTokens, emitFiles, volatileKind } from './tokens/index.js';
export { routeTemplate } from './routes.js';
