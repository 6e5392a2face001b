/** `retap snapshot import --format har` and `retap snapshot export --format har`. */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import { usageError } from '../../../core/errors.js';
import { packageRoot } from '../../../core/paths.js';
import { exportHar, importHar, openSnapshot } from '../../../snapshots/index.js';
import { parse } from '../../args.js';
import { snapshotWriteConfig } from '../../snapshot-config.js';
import { HELP } from './help.js';
import { json, out, progress, type Sub } from './sub.js';

function checkFormat(format: string | undefined, cmd: string): void {
  if (format === undefined) throw usageError(`retap snapshot ${cmd}: --format is required`, 'Use --format har.');
  if (format !== 'har') throw usageError(`retap snapshot ${cmd}: format '${format}' is not supported`, 'Use --format har.');
}

export const importCmd: Sub = {
  help: HELP.import!,
  async run(argv) {
    const { values: v, positionals } = parse<{
      format?: string;
      out?: string;
      name?: string;
      direction?: string;
      gzip?: boolean;
      'no-redact'?: boolean;
      config?: string;
      json?: boolean;
    }>(
      'snapshot import',
      argv,
      {
        format: { type: 'string' },
        out: { type: 'string', short: 'o' },
        name: { type: 'string' },
        direction: { type: 'string' },
        gzip: { type: 'boolean' },
        'no-redact': { type: 'boolean' },
        config: { type: 'string' },
        json: { type: 'boolean' },
      },
      true,
    );
    checkFormat(v.format, 'import');
    if (positionals.length !== 1) throw usageError('retap snapshot import: give exactly one HAR FILE');
    if (!v.out) throw usageError('retap snapshot import: --out DIR is required (a store directory, or STORE/vN)');
    if (v.direction && v.direction !== 'inbound' && v.direction !== 'outbound') {
      throw usageError(`--direction: '${v.direction}' must be inbound or outbound`);
    }
    const file = positionals[0]!;
    const written = await snapshotWriteConfig(v.config, { gzip: v.gzip, noRedact: v['no-redact'] });
    const p = progress('importing');
    const r = await importHar(file, {
      dir: v.out,
      name: v.name ?? basename(file).replace(/\.har$/i, ''),
      direction: (v.direction as 'inbound' | 'outbound' | undefined) ?? 'inbound',
      gzip: written.gzip,
      redaction: written.redaction,
      source: { host: hostname(), filters: { har: basename(file) } },
      onProgress: (d, t) => p.update(d, t),
    });
    p.done();
    if (v.json) json({ path: r.path, version: r.manifest.version, hash: r.manifest.hash, imported: r.imported, skipped: r.skipped });
    else {
      out(`${r.path}: imported ${r.imported} exchanges${r.skipped.length ? `, skipped ${r.skipped.length} (${r.skipped.slice(0, 3).join('; ')})` : ''}`);
    }
    return 0;
  },
};

export const exportCmd: Sub = {
  help: HELP.export!,
  async run(argv) {
    const { values: v, positionals } = parse<{ format?: string; output?: string; json?: boolean }>(
      'snapshot export',
      argv,
      { format: { type: 'string' }, output: { type: 'string', short: 'o' }, json: { type: 'boolean' } },
      true,
    );
    checkFormat(v.format, 'export');
    if (positionals.length !== 1) throw usageError('retap snapshot export: give exactly one SNAPSHOT');
    const snap = await openSnapshot(positionals[0]!, { verify: false });
    const target = v.output ?? `${snap.manifest.name}-v${snap.manifest.version}.har`;
    const version = (JSON.parse(readFileSync(`${packageRoot()}/package.json`, 'utf8')) as { version: string }).version;
    const p = progress('exporting');
    const r = await exportHar(snap.path, target, { version, onProgress: (n) => p.update(n, snap.manifest.counts.exchanges) });
    p.done();
    if (target === '-') return 0;
    if (v.json) json(r);
    else
      out(
        `${r.path}: ${r.entries} entries (HAR 1.2)${r.quarantined ? `; ${r.quarantined} quarantined exchange(s) left out` : ''}`,
      );
    return 0;
  },
};
