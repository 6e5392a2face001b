/** `retap snapshot diff | filter | merge`. */
import { usageError } from '../../../core/errors.js';
import { diffSnapshots, type FilterSpec, filterSnapshot, mergeSnapshots, openSnapshot, parseTimeUs } from '../../../snapshots/index.js';
import { many, parse, parseIntFlag } from '../../args.js';
import { HELP } from './help.js';
import { json, out, progress, type Sub } from './sub.js';

export const diff: Sub = {
  help: HELP.diff!,
  async run(argv) {
    const { values, positionals } = parse<{ json?: boolean; limit?: string }>(
      'snapshot diff',
      argv,
      { json: { type: 'boolean' }, limit: { type: 'string' } },
      true,
    );
    if (positionals.length !== 2) throw usageError('retap snapshot diff: give two snapshots, A and B');
    const limit = values.limit ? parseIntFlag(values.limit, '--limit', 0) : 20;
    const d = await diffSnapshots(positionals[0]!, positionals[1]!, { limit: values.json ? Math.max(limit, 1000) : limit });
    if (values.json) {
      json(d);
      return d.identical ? 0 : 1;
    }
    const lines = [`A ${d.a.name}@v${d.a.version} ${d.a.hash}`, `B ${d.b.name}@v${d.b.version} ${d.b.hash}`];
    if (d.identical) {
      out([...lines, 'identical'].join('\n'));
      return 0;
    }
    const r = d.routes;
    lines.push(`routes: ${r.added.length} added, ${r.removed.length} removed, ${r.changed.length} changed`);
    for (const x of r.added.slice(0, limit)) lines.push(`  + ${x.key} (${x.b!.count})`);
    for (const x of r.removed.slice(0, limit)) lines.push(`  - ${x.key} (${x.a!.count})`);
    for (const x of r.changed.slice(0, limit)) lines.push(`  ~ ${x.key} ${x.a!.count} → ${x.b!.count} ${JSON.stringify(x.a!.statuses)} → ${JSON.stringify(x.b!.statuses)}`);
    const e = d.exchanges;
    lines.push(`exchanges: ${e.added} added, ${e.removed} removed, ${e.changed} changed, ${e.same} same`);
    for (const x of e.list.added) lines.push(`  + ${x.id}`);
    for (const x of e.list.removed) lines.push(`  - ${x.id}`);
    for (const x of e.list.changed) lines.push(`  ~ ${x.id} (${x.fields?.join(', ')})`);
    out(lines.join('\n'));
    return 1;
  },
};

interface FilterFlags {
  json?: boolean;
  out?: string;
  name?: string;
  gzip?: boolean;
  from?: string;
  to?: string;
  direction?: string;
  method?: string[];
  host?: string[];
  route?: string[];
  status?: string[];
  header?: string[];
  service?: string[];
  protocol?: string[];
  peer?: string[];
  field?: string[];
  text?: string[];
}

export const filter: Sub = {
  help: HELP.filter!,
  async run(argv) {
    const { values: v, positionals } = parse<FilterFlags>(
      'snapshot filter',
      argv,
      {
        json: { type: 'boolean' },
        out: { type: 'string', short: 'o' },
        name: { type: 'string' },
        gzip: { type: 'boolean' },
        from: { type: 'string' },
        to: { type: 'string' },
        direction: { type: 'string' },
        method: { type: 'string', multiple: true },
        host: { type: 'string', multiple: true },
        route: { type: 'string', multiple: true },
        status: { type: 'string', multiple: true },
        header: { type: 'string', multiple: true },
        service: { type: 'string', multiple: true },
        protocol: { type: 'string', multiple: true },
        peer: { type: 'string', multiple: true },
        field: { type: 'string', multiple: true },
        text: { type: 'string', multiple: true },
      },
      true,
    );
    if (positionals.length !== 1) throw usageError('retap snapshot filter: give exactly one SNAPSHOT');
    if (v.direction && v.direction !== 'inbound' && v.direction !== 'outbound') {
      throw usageError(`--direction: '${v.direction}' must be inbound or outbound`);
    }
    const src = positionals[0]!;
    const first = (await openSnapshot(src, { verify: false })).manifest.timeRange?.firstStartUs;
    const spec: FilterSpec = {};
    if (v.from) spec.fromUs = parseTimeUs(v.from, '--from', first);
    if (v.to) spec.toUs = parseTimeUs(v.to, '--to', first);
    if (v.direction) spec.direction = v.direction as 'inbound' | 'outbound';
    if (v.method) spec.methods = many(v.method);
    if (v.host) spec.hosts = many(v.host);
    if (v.route) spec.routes = many(v.route);
    if (v.status) spec.statuses = many(v.status);
    if (v.header) spec.headers = many(v.header);
    if (v.service) spec.services = many(v.service);
    if (v.protocol) spec.protocols = many(v.protocol);
    if (v.peer) spec.peers = many(v.peer);
    if (v.field) spec.json = many(v.field);
    if (v.text) spec.text = many(v.text);
    const p = progress('filtering');
    const r = await filterSnapshot(src, spec, { dir: v.out, name: v.name, gzip: v.gzip, onProgress: (n) => p.update(n) });
    p.done();
    if (v.json) json({ path: r.path, version: r.manifest.version, hash: r.manifest.hash, read: r.read, written: r.written });
    else out(`${r.path}: kept ${r.written} of ${r.read} exchanges (${r.manifest.name}@v${r.manifest.version} ${r.manifest.hash.slice(7, 19)})`);
    return 0;
  },
};

export const merge: Sub = {
  help: HELP.merge!,
  async run(argv) {
    const { values: v, positionals } = parse<{ json?: boolean; out?: string; name?: string; gzip?: boolean }>(
      'snapshot merge',
      argv,
      { json: { type: 'boolean' }, out: { type: 'string', short: 'o' }, name: { type: 'string' }, gzip: { type: 'boolean' } },
      true,
    );
    if (positionals.length < 2) throw usageError('retap snapshot merge: give two or more snapshots');
    const p = progress('merging');
    const r = await mergeSnapshots(positionals, { dir: v.out, name: v.name, gzip: v.gzip, onProgress: (n) => p.update(n) });
    p.done();
    if (v.json) {
      json({ path: r.path, version: r.manifest.version, hash: r.manifest.hash, written: r.written, duplicates: r.duplicates, conflicts: r.conflicts });
    } else {
      out(`${r.path}: ${r.written} exchanges (${r.duplicates} duplicates dropped, ${r.conflicts} conflicts kept) ${r.manifest.hash.slice(7, 19)}`);
    }
    return 0;
  },
};
