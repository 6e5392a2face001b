/** `retap snapshot minimise`: every distinct behaviour kept, repeats dropped (behaviours.ts). */
import { usageError } from '../../../core/errors.js';
import { parse, parseIntFlag } from '../../args.js';
import { minimiseSnapshot } from './behaviours.js';
import { HELP } from './help.js';
import { json, out, progress, type Sub } from './sub.js';

const kib = (n: number): string =>
  n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
const pct = (a: number, b: number): string => (b === 0 ? '-' : `${((100 * a) / b).toFixed(1)}%`);

export const minimise: Sub = {
  help: HELP.minimise!,
  async run(argv) {
    const { values: v, positionals } = parse<{
      json?: boolean;
      out?: string;
      name?: string;
      gzip?: boolean;
      keep?: string;
    }>(
      'snapshot minimise',
      argv,
      {
        json: { type: 'boolean' },
        out: { type: 'string', short: 'o' },
        name: { type: 'string' },
        gzip: { type: 'boolean' },
        keep: { type: 'string' },
      },
      true,
    );
    if (positionals.length !== 1) throw usageError('retap snapshot minimise: give exactly one SNAPSHOT');
    const keep = v.keep ? parseIntFlag(v.keep, '--keep', 1) : 1;
    const p = progress('minimising');
    const r = await minimiseSnapshot(positionals[0]!, {
      keep,
      dir: v.out,
      name: v.name,
      gzip: v.gzip,
      onProgress: (n) => p.update(n),
    });
    p.done();
    const summary = {
      path: r.path,
      version: r.manifest.version,
      hash: r.manifest.hash,
      parent: r.parent,
      keep,
      coverage: r.coverage,
      requests: r.requests,
      units: r.units,
      exchanges: r.exchanges,
      bytes: r.bytes,
      quarantinedDropped: r.quarantinedDropped,
    };
    if (v.json) {
      json(summary);
      return 0;
    }
    const c = r.coverage;
    out(
      [
        `${r.path}: ${r.manifest.name}@v${r.manifest.version} ${r.manifest.hash.slice(7, 19)} (parent ${r.parent})`,
        `kept:      ${r.requests.kept} of ${r.requests.source} requests (${r.units.kept} of ${r.units.source} sessions kept whole), ${r.exchanges.kept} of ${r.exchanges.source} exchanges`,
        `coverage:  behaviours ${c.kept.behaviours}/${c.source.behaviours}, routes ${c.kept.routes}/${c.source.routes}, statuses ${c.kept.statuses}/${c.source.statuses} (up to ${keep} example(s) each)`,
        `size:      ${kib(r.bytes.kept)} of ${kib(r.bytes.source)} exchange lines (${pct(r.bytes.source - r.bytes.kept, r.bytes.source)} saved)`,
        ...(r.quarantinedDropped
          ? [`left out: ${r.quarantinedDropped} quarantined exchange(s) (never replayed)`]
          : []),
      ].join('\n'),
    );
    return 0;
  },
};
