/**
 * `retap snapshot accept RESULTS`: an intended change becomes the new recording. The candidate's
 * live answers (inbound exchanges as captured at the build's socket, with the outbound calls the
 * build made) are written as a new version whose parent is the replayed snapshot.
 */
import { dirname } from 'node:path';
import type { Exchange } from '../../../core/exchange.js';
import type { ReplayResults, ReplayRun } from '../../../core/results.js';
import type { Sub } from './sub.js';

export const ACCEPT_HELP = `Usage: retap snapshot accept RESULTS [--run LABEL] [--out DIR] [--allow-failures] [--json]

Records what a build answered during a replay as a new snapshot version, for when a change in
the answers is intended. RESULTS is a results.json (or the folder holding it) from retap replay
or retap ci. Every replayed request keeps its place; its recorded exchange is replaced by the
live one (the build's answer, server-side timings), and its outbound calls by the calls the build
made. The new version's parent is the replayed version, so the lineage shows what was accepted.

  --run LABEL        which run to accept (default candidate)
  --out DIR          store or vN directory (default: the next version in the replayed store)
  --allow-failures   accept even when some requests have no live answer (they keep the
                     recorded exchange); without it such results are refused
  --json             print { path, version, parent, replaced, kept, outbound } as JSON

Transform rules (transforms.yaml) are carried over; tokens are discovered again at the next
replay. Redaction applies as for any new snapshot.

Example:
  retap ci || true                                   # the gate fails on an intended change
  retap snapshot accept retap-reports/results.json   # v(N+1) with the new answers
  git add .retap/snapshots && git commit -m "accept new answers of GET /orders/{id}"`;

interface Values {
  run?: string;
  out?: string;
  'allow-failures'?: boolean;
  json?: boolean;
}

/**
 * Headers replays made before connections were joined (issue 14) added to every request; results
 * written by those still carry them. Today's replay sends what was recorded and adds nothing.
 */
const DRIVER_HEADERS = new Set(['x-retap-id']);

function clean(ex: Exchange): Exchange {
  return {
    ...ex,
    request: {
      ...ex.request,
      headers: ex.request.headers.filter(([k]) => !DRIVER_HEADERS.has(k.toLowerCase())),
    },
  };
}

export interface Accepted {
  exchanges: Exchange[];
  replaced: number;
  kept: number;
  outbound: number;
}

/** The exchanges of the accepted version, in recorded order (pure, for tests). */
export function acceptedExchanges(results: ReplayResults, run: ReplayRun): Accepted {
  const items = new Map(run.items.map((i) => [i.id, i]));
  const seen = new Set<string>();
  const out: Exchange[] = [];
  const unique = (ex: Exchange): Exchange => {
    let id = ex.id;
    for (let n = 2; seen.has(id); n++) id = `${ex.id}~${n}`;
    seen.add(id);
    return id === ex.id ? ex : { ...ex, id };
  };
  let replaced = 0;
  let kept = 0;
  let outbound = 0;
  for (const rec of results.recorded) {
    const it = items.get(rec.id);
    if (it?.live) {
      replaced++;
      out.push(unique(clean(it.live)));
      for (const o of it.outbound) out.push(unique(o));
      outbound += it.outbound.length;
    } else {
      kept++;
      out.push(unique(rec.exchange));
      for (const o of rec.outbound) out.push(unique(o));
      outbound += rec.outbound.length;
    }
  }
  return { exchanges: out, replaced, kept, outbound };
}

export const accept: Sub = {
  help: ACCEPT_HELP,
  async run(argv) {
    const [
      { parse },
      { usageError, RetapError, ErrorCodes },
      snapshots,
      { readResults },
      { hostname },
      { json, out },
    ] = await Promise.all([
      import('../../args.js'),
      import('../../../core/errors.js'),
      import('../../../snapshots/index.js'),
      import('../../../snapshots/index.js'),
      import('node:os'),
      import('./sub.js'),
    ]);
    const { values, positionals } = parse<Values>(
      'snapshot accept',
      argv,
      {
        run: { type: 'string' },
        out: { type: 'string' },
        'allow-failures': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      true,
    );
    if (positionals.length !== 1) throw usageError('retap snapshot accept: give one RESULTS file or folder');
    const results = await readResults(positionals[0] as string);
    const label = values.run ?? 'candidate';
    const run = results.runs.find((r) => r.label === label);
    if (!run)
      throw usageError(
        `retap snapshot accept: the results have no run '${label}'`,
        `Runs there: ${results.runs.map((r) => r.label).join(', ') || 'none'}.`,
      );
    if (run.error)
      throw new RetapError(
        ErrorCodes.SNAPSHOT_INVALID,
        `run ${label} ended on ${run.error.code}: ${run.error.message}; its answers are incomplete`,
        { hint: 'Fix the build or the environment and replay again before accepting.' },
      );
    const parent = await snapshots
      .openSnapshot(results.snapshot.path, { verify: false })
      .catch((e: unknown) => {
        throw new RetapError(
          ErrorCodes.SNAPSHOT_NOT_FOUND,
          `the replayed snapshot ${results.snapshot.path} is not here: ${(e as Error).message}`,
          {
            hint: 'Accept in the checkout that ran the replay (the new version goes next to the replayed one), or pass --out.',
            cause: e,
          },
        );
      });
    if (parent.manifest.hash !== results.snapshot.hash)
      throw new RetapError(
        ErrorCodes.SNAPSHOT_INVALID,
        `${results.snapshot.path} is not the version that was replayed (hash ${parent.manifest.hash}, results name ${results.snapshot.hash})`,
        { hint: 'Accept against the same snapshot version the replay used.' },
      );
    const acc = acceptedExchanges(results, run);
    if (acc.kept > 0 && !values['allow-failures'])
      throw new RetapError(
        ErrorCodes.SNAPSHOT_INVALID,
        `${acc.kept} of ${results.recorded.length} requests have no live answer in run ${label}`,
        { hint: 'Replay again, or pass --allow-failures to keep their recorded exchanges.' },
      );
    const writer = await snapshots.createSnapshotWriter({
      dir: values.out ?? dirname(parent.path),
      name: parent.manifest.name,
      parent: parent.path,
      source: {
        host: hostname(),
        ...(parent.manifest.source.service ? { service: parent.manifest.source.service } : {}),
        command: run.build.command.split(' '),
        filters: { acceptedFrom: { results: results.createdAt, run: label } },
      },
      transforms: await parent.transforms(),
      notes: [
        `accepted from run ${label} of a replay of v${parent.manifest.version} (${results.createdAt}): ${acc.replaced} answers replaced, ${acc.kept} kept`,
      ],
    });
    try {
      for (const ex of acc.exchanges) await writer.append(ex);
      const manifest = await writer.finish();
      const summary = {
        path: writer.path,
        version: manifest.version,
        parent: { version: parent.manifest.version, hash: parent.manifest.hash },
        replaced: acc.replaced,
        kept: acc.kept,
        outbound: acc.outbound,
      };
      if (values.json) json(summary);
      else
        out(
          `retap snapshot accept: ${manifest.name} v${manifest.version} (parent v${parent.manifest.version}) → ${writer.path}: ${acc.replaced} answers from run ${label}, ${acc.outbound} outbound calls${acc.kept ? `, ${acc.kept} recorded exchanges kept` : ''}`,
        );
      return 0;
    } catch (e) {
      await writer.abort().catch(() => undefined);
      throw e;
    }
  },
};
