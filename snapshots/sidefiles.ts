/** transforms.yaml and tokens.yaml: schema checks plus the rule that ids are unique. */
import { checkValue, invalid } from './schema.js';
import type { TokensFile, TransformsFile } from './yamlfile.js';

function uniqueIds(list: Array<{ id: string }>, file: string, key: string, schema: 'transforms' | 'tokens'): void {
  const seen = new Map<string, number>();
  list.forEach((item, i) => {
    const before = seen.get(item.id);
    if (before !== undefined) {
      throw invalid(
        [{ file, path: `$.${key}[${i}].id`, message: `repeats id '${item.id}' of $.${key}[${before}]`, fix: 'give every entry its own id' }],
        schema,
      );
    }
    seen.set(item.id, i);
  });
}

export function validateTransforms(value: unknown, file: string): TransformsFile {
  checkValue(value, 'transforms', file);
  const t = value as TransformsFile;
  uniqueIds(t.rules, file, 'rules', 'transforms');
  return t;
}

export function validateTokens(value: unknown, file: string): TokensFile {
  checkValue(value, 'tokens', file);
  const t = value as TokensFile;
  uniqueIds(t.tokens, file, 'tokens', 'tokens');
  return t;
}
