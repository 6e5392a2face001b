/** Transform rules (transforms.yaml) and the replay engine the runner and the mocks use. */
export type { Rule, RuleMatch, Extractor, Step, Injector, Side } from './types.js';
export { compileRules, loadTransformsText, type CompiledRule, type CompileOptions, type Plugins } from './compile.js';
export {
  createReplayContext,
  type ReplayContext,
  type ReplayInput,
  type ReplayOptions,
  type ReplayWarning,
  type PreparedRequest,
  type ObservedResponse,
  type LiveResponse,
  type Change,
} from './engine.js';
export { applyMockTransforms, createMockContext, type MockContext, type MockAnswer, type LiveRequest } from './mock.js';
export { decodeJwt, signJwt, resignJwt } from './jwt.js';
export { parseTime, formatTime, shiftTimeText, type TimeFormat } from './timefmt.js';
export { parseJsonPath } from './jsonpath.js';
