/** `retap snapshot ls | show | validate`. */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, RetapError, usageError } from '../../../core/errors.js';
import {
  formatIssue,
  listVersions,
  type OpenedSnapshot,
  openSnapshot,
  readManifest,
  snapshotRoot,
  validateSnapshot,
} from '../../../snapshots/index.js';
import { parse, parseIntFlag } from '../../args.js';
import { HELP } from './help.js';
import { isoUs, json, out, type Sub, table } from './sub.js';

interface VersionRow {
  store: string;
  version: number;
  path: string;
  hash: string;
  parent: string | null;
  created: string;
  exchanges: number;
  problem?: string;
}

async function storeRows(store: string): Promise<VersionRow[]> {
  const rows: VersionRow[] = [];
  const byHash = new Map<string, number>();
  for (const v of await listVersions(store)) {
    try {
      const m = await readManifest(v.path);
      byHash.set(m.hash, v.version);
      rows.push({
        store,
        version: v.version,
        path: v.path,
        hash: m.hash,
        parent: m.parent ? (m.parent.name && m.parent.version ? `${m.parent.name}@v${m.parent.version}` : m.parent.hash) : null,
        created: m.created,
        exchanges: m.counts.exchanges,
      });
      const last = rows[rows.length - 1]!;
      if (m.parent) {
        const local = byHash.get(m.parent.hash);
        if (local !== undefined) last.parent = `v${local}`;
      }
    } catch (e) {
      rows.push({ store, version: v.version, path: v.path, hash: '', parent: null, created: '', exchanges: 0, problem: (e as Error).message });
    }
  }
  return rows;
}

export const ls: Sub = {
  help: HELP.ls!,
  async run(argv) {
    const { values, positionals } = parse<{ json?: boolean }>('snapshot ls', argv, { json: { type: 'boolean' } }, true);
    const target = positionals[0] ?? snapshotRoot();
    if (!existsSync(target)) {
      throw new RetapError(ErrorCodes.SNAPSHOT_NOT_FOUND, `no such folder: ${target}`, { hint: 'Give a store directory or a folder of stores.' });
    }
    let rows = await storeRows(target);
    if (rows.length === 0) {
      for (const n of readdirSync(target).sort()) rows.push(...(await storeRows(join(target, n))));
    }
    if (values.json) {
      json({ versions: rows });
      return 0;
    }
    if (rows.length === 0) {
      out(`no snapshots under ${target}`);
      return 0;
    }
    const header = ['STORE', 'VERSION', 'HASH', 'PARENT', 'CREATED', 'EXCHANGES'];
    rows = rows.sort((a, b) => (a.store < b.store ? -1 : a.store > b.store ? 1 : a.version - b.version));
    out(
      table([
        header,
        ...rows.map((r) => [
          r.store,
          `v${r.version}`,
          r.problem ? 'INVALID' : r.hash.slice(7, 19),
          r.parent ? (r.parent.startsWith('sha256:') ? r.parent.slice(7, 19) : r.parent) : '-',
          r.created,
          r.problem ? r.problem.split('\n')[0]! : String(r.exchanges),
        ]),
      ]),
    );
    return 0;
  },
};

export const show: Sub = {
  help: HELP.show!,
  async run(argv) {
    const { values, positionals } = parse<{ json?: boolean; routes?: string }>(
      'snapshot show',
      argv,
      { json: { type: 'boolean' }, routes: { type: 'string' } },
      true,
    );
    if (positionals.length !== 1) throw usageError('retap snapshot show: give exactly one SNAPSHOT');
    const top = values.routes ? parseIntFlag(values.routes, '--routes', 1) : 20;
    const snap = await openSnapshot(positionals[0]!);
    const m = snap.manifest;
    const dependencies = [...new Set(m.counts.routes.filter((r) => r.host).map((r) => r.host!))].sort();
    const services = m.source.service ? [m.source.service] : [];
    const quarantined = m.counts.quarantined ? await quarantinedOf(snap, top) : undefined;
    const summary = {
      path: snap.path,
      name: m.name,
      version: m.version,
      hash: m.hash,
      parent: m.parent,
      created: m.created,
      source: m.source,
      services,
      dependencies,
      timeRange: m.timeRange
        ? { first: isoUs(m.timeRange.firstStartUs), last: isoUs(m.timeRange.lastStartUs), seconds: (m.timeRange.lastStartUs - m.timeRange.firstStartUs) / 1e6 }
        : null,
      counts: m.counts,
      counters: m.counters,
      redaction: m.redaction,
      notes: m.notes,
      ...(quarantined ? { quarantined } : {}),
    };
    if (values.json) {
      json(summary);
      return 0;
    }
    const c = m.counts;
    const map = (r: Record<string, number>) => Object.entries(r).map(([k, v]) => `${k} ${v}`).join(', ') || '-';
    const lines = [
      `${m.name}@v${m.version}  ${m.hash}`,
      `path:       ${snap.path}`,
      `created:    ${m.created}`,
      `parent:     ${m.parent ? `${m.parent.name ?? ''}${m.parent.version ? `@v${m.parent.version}` : ''} ${m.parent.hash}`.trim() : '-'}`,
      `source:     host ${m.source.host}${m.source.service ? `, service ${m.source.service}` : ''}${m.source.command ? `, command ${m.source.command.join(' ')}` : ''}`,
      `filters:    ${JSON.stringify(m.source.filters)}`,
      `time range: ${summary.timeRange ? `${summary.timeRange.first} → ${summary.timeRange.last} (${summary.timeRange.seconds.toFixed(3)} s)` : '-'}`,
      `exchanges:  ${c.exchanges} (${map(c.byDirection)}); protocols: ${map(c.byProtocol)}`,
      `statuses:   ${map(c.byStatus)}`,
      `links:      ${linksLine(c)}`,
      `bodies:     ${c.truncatedBodies} truncated, ${c.noResponse} without response`,
      `services:   ${services.join(', ') || '-'}; dependencies: ${dependencies.join(', ') || '-'}`,
      `counters:   ${map(m.counters)}`,
      `redaction:  ${m.redaction.enabled ? `on${m.redaction.keyed ? ' (keyed)' : ' (unkeyed placeholders)'}` : 'off'}; ${m.redaction.redacted.map((r) => `${r.location} ×${r.count}`).join(', ') || 'nothing redacted'}`,
    ];
    for (const n of m.notes) lines.push(`note:       ${n}`);
    if (quarantined) {
      lines.push(
        '',
        `quarantined (${c.quarantined}, kept raw, never replayed; first ${quarantined.length}):`,
        table([
          ['  ID', 'DIRECTION', 'PROTOCOL', 'BODY SIZES', 'REASON'],
          ...quarantined.map((q) => [`  ${q.id}`, q.direction, q.protocol, `${q.requestBytes}/${q.responseBytes ?? '-'}`, q.reason]),
        ]),
      );
    }
    const routes = [...c.routes].sort((a, b) => b.count - a.count).slice(0, top);
    lines.push('', `routes (${c.routes.length}${c.otherRoutes ? ` + ${c.otherRoutes} exchanges on unlisted routes` : ''}, top ${routes.length}):`);
    lines.push(
      table([
        ['  COUNT', 'DIRECTION', 'METHOD', 'ROUTE', 'STATUSES'],
        ...routes.map((r) => [`  ${r.count}`, r.direction, r.method, `${r.host ?? ''}${r.route}`, map(r.statuses)]),
      ]),
    );
    out(lines.join('\n'));
    return 0;
  },
};

/**
 * How the outbound calls were linked to the request that caused them: the links capture stored
 * (exact methods), and how many have none (a replay links those by time window, a guess, except
 * a database connection's opening calls).
 */
function linksLine(c: { byDirection: Record<string, number>; links?: Record<string, number>; quarantined?: number }): string {
  const outbound = c.byDirection.outbound ?? 0;
  if (outbound === 0) return '- (no outbound calls)';
  const stored = Object.entries(c.links ?? {});
  const linked = stored.reduce((n, [, v]) => n + v, 0);
  const parts = stored.map(([k, v]) => `${k} ${v}${k === 'time-window' ? ' (a guess)' : ''}`);
  // quarantined exchanges count in byDirection but are never linked
  const rest = outbound - linked;
  if (rest > 0) parts.push(`${rest} without a stored link (linked by time window when replayed: a guess under concurrency; a database connection's opening calls stay unlinked)`);
  return parts.join(', ');
}

interface QuarantinedRow {
  id: string;
  direction: string;
  protocol: string;
  reason: string;
  /** Sizes on the wire (request, response); the kept bytes may be fewer. */
  requestBytes: number;
  responseBytes?: number;
}

/** The first `limit` quarantined exchanges, read from the exchanges file (only when there are some). */
async function quarantinedOf(snap: OpenedSnapshot, limit: number): Promise<QuarantinedRow[]> {
  const rows: QuarantinedRow[] = [];
  for await (const ex of snap.exchanges()) {
    if (!ex.quarantine) continue;
    const row: QuarantinedRow = {
      id: ex.id,
      direction: ex.direction,
      protocol: ex.quarantine.protocol,
      reason: ex.quarantine.reason,
      requestBytes: ex.request.body.size,
    };
    if (ex.response) row.responseBytes = ex.response.body.size;
    rows.push(row);
    if (rows.length >= limit) break;
  }
  return rows;
}

export const validate: Sub = {
  help: HELP.validate!,
  async run(argv) {
    const { values, positionals } = parse<{ json?: boolean }>('snapshot validate', argv, { json: { type: 'boolean' } }, true);
    if (positionals.length !== 1) throw usageError('retap snapshot validate: give exactly one SNAPSHOT');
    const report = await validateSnapshot(positionals[0]!);
    if (values.json) json(report);
    else if (report.ok) out(`${report.path}: valid (${report.exchanges} exchanges)`);
    else for (const i of report.issues) process.stderr.write(`${formatIssue(i)}\n`);
    return report.ok ? 0 : 1;
  },
};
