/** YAML files of a snapshot: written with a fixed layout (no line folding), read with schema checks. */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { stringify } from 'yaml';
import { ErrorCodes, RetapError } from '../core/errors.js';
import { parseYamlChecked, type SchemaName } from './schema.js';

export function toYaml(value: unknown): string {
  return stringify(value, { lineWidth: 0, minContentWidth: 0, aliasDuplicateObjects: false });
}

export async function readYamlChecked(path: string, schema: SchemaName, label = basename(path)): Promise<{ text: string; value: unknown }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new RetapError(ErrorCodes.SNAPSHOT_INVALID, `${label}: cannot read ${path}`, {
      hint: 'The snapshot is incomplete: restore it from version control or write it again.',
      cause: e,
    });
  }
  return { text, value: parseYamlChecked(text, label, schema) };
}

export interface TransformsFile {
  version: 1;
  rules: Array<Record<string, unknown> & { id: string }>;
  [extension: `x-${string}`]: unknown;
}

export interface TokensFile {
  version: 1;
  tokens: Array<Record<string, unknown> & { id: string }>;
  [extension: `x-${string}`]: unknown;
}

export const EMPTY_TRANSFORMS: TransformsFile = { version: 1, rules: [] };
export const EMPTY_TOKENS: TokensFile = { version: 1, tokens: [] };
