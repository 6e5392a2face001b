/**
 * Loads the `assertions:` section of retap.yaml (the named file, or ./retap.yaml when it exists)
 * and the discovered tokens of the replayed snapshot, for `retap report` and `retap ci`.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ErrorCodes, RetapError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { openSnapshot } from '../snapshots/index.js';
import { configFromYaml, defaultConfig, type EvaluateConfig, type TokenHint } from './config.js';

const log = logger('assertions');

/** `file` given → it must exist; otherwise ./retap.yaml is read when present. */
export async function readAssertionsConfig(file?: string, cwd = process.cwd()): Promise<EvaluateConfig> {
  const path = file ? resolve(cwd, file) : resolve(cwd, 'retap.yaml');
  if (!file && !existsSync(path)) return defaultConfig();
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new RetapError(ErrorCodes.CONFIG_INVALID, `cannot read config ${path}: ${(e as Error).message}`, {
      cause: e,
      hint: 'Pass an existing file with --config, or leave it out to use ./retap.yaml.',
    });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new RetapError(ErrorCodes.CONFIG_INVALID, `${path}: not valid YAML (${(e as Error).message})`, {
      cause: e,
    });
  }
  const section = doc && typeof doc === 'object' ? (doc as Record<string, unknown>).assertions : undefined;
  const cfg = configFromYaml(section, defaultConfig(), `${file ?? 'retap.yaml'} assertions`);
  // .proto folders are relative to the file that names them
  if (cfg.protoDirs) cfg.protoDirs = cfg.protoDirs.map((d) => resolve(dirname(path), d));
  return cfg;
}

/** Tokens discovered in the snapshot (tokens.yaml); empty when the snapshot is not at hand. */
export async function readSnapshotTokens(snapshotPath: string): Promise<TokenHint[]> {
  if (!snapshotPath || !existsSync(snapshotPath)) return [];
  try {
    const snap = await openSnapshot(snapshotPath, { verify: false });
    const file = await snap.tokens();
    return file.tokens as unknown as TokenHint[];
  } catch (e) {
    log.warn(`tokens of ${snapshotPath} not used: ${(e as Error).message}`);
    return [];
  }
}
