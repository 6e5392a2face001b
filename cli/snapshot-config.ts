/**
 * What retap.yaml says about writing snapshots (`snapshots.gzip`, `redaction:`), for the commands
 * that write them from traffic: capture, k8s capture, snapshot import. Flags win over the file.
 */
import { loadCiConfig } from '../ci/config.js';
import type { RedactionConfig } from '../snapshots/index.js';

export interface SnapshotWriteConfig {
  gzip: boolean;
  /** false: redaction off (--no-redact or `redaction.enabled: false`); undefined: the built-in rules. */
  redaction: RedactionConfig | false | undefined;
  /** The retap.yaml read, when there was one. */
  file?: string;
}

export async function snapshotWriteConfig(
  configFile: string | undefined,
  flags: { gzip?: boolean | undefined; noRedact?: boolean | undefined },
): Promise<SnapshotWriteConfig> {
  const cfg = await loadCiConfig(configFile);
  const redaction = cfg.redaction as RedactionConfig | undefined;
  return {
    gzip: flags.gzip === true || cfg.gzip === true,
    redaction: flags.noRedact ? false : redaction?.enabled === false ? false : redaction,
    ...(cfg.file ? { file: cfg.file } : {}),
  };
}
