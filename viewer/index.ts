/**
 * `retap view`: a local web viewer over a snapshot, a replay's results or a live capture.
 *
 *   const v = await startViewer({ source: await openSource({ snapshot: 'snaps/orders' }) });
 *   console.log(v.url);          // http://127.0.0.1:PORT/<token>/
 *   await v.loaded;              // the initial content is indexed
 *   await v.close();
 *
 * Layout: sources/ (where rows come from) → store.ts (columns + text index over the source's
 * file) → search.ts (queries, pages, histogram, facets, service map) → server.ts (HTTP + SSE) →
 * web/ and static/ (the page, plain TypeScript and CSS, no framework).
 */
import { ErrorCodes, RetapError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { Search } from './search.js';
import { startServer } from './server.js';
import { LiveSource, type LiveOptions } from './sources/live.js';
import { ResultsSource } from './sources/results.js';
import { SnapshotSource } from './sources/snapshot.js';
import type { TrafficSource } from './sources/types.js';
import { LineFile, Store } from './store.js';

export type { LiveOptions } from './sources/live.js';
export type { SourceHealth, SourceInfo, TrafficSource } from './sources/types.js';
export { parseQuery, formatSpec } from './query.js';

const log = logger('view');

export type SourceSpec = { snapshot: string } | { results: string } | { live: LiveOptions };

export async function openSource(spec: SourceSpec): Promise<TrafficSource> {
  if ('snapshot' in spec) return SnapshotSource.open(spec.snapshot);
  if ('results' in spec) return ResultsSource.open(spec.results);
  return new LiveSource(spec.live);
}

export interface ViewerOptions {
  source: TrafficSource;
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: any free port). */
  port?: number;
  /** Fixed token (tests); default: 144 random bits. */
  token?: string;
}

export interface Viewer {
  url: string;
  store: Store;
  search: Search;
  source: TrafficSource;
  /** Resolves when the initial content is indexed (live: once capture is attached); rejects if loading failed. */
  loaded: Promise<void>;
  close(): Promise<void>;
}

export async function startViewer(opts: ViewerOptions): Promise<Viewer> {
  const { source } = opts;
  const store = new Store(new LineFile(source.file));
  const search = new Search(store);
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer({ store, search, source, host: opts.host ?? '127.0.0.1', port: opts.port ?? 0, ...(opts.token ? { token: opts.token } : {}) });
  } catch (e) {
    await source.close();
    throw e;
  }
  const loaded = source.start(store).catch((e: unknown) => {
    log.warn(`loading stopped: ${(e as Error).message}`);
    throw e instanceof RetapError ? e : new RetapError(ErrorCodes.INTERNAL, `the viewer could not load its traffic: ${(e as Error).message}`, { cause: e });
  });
  loaded.catch(() => undefined);
  let closing: Promise<void> | undefined;
  return {
    url: server.url,
    store,
    search,
    source,
    loaded,
    close() {
      closing ??= (async () => {
        await server.close();
        await source.close();
        await store.file.close().catch(() => undefined);
      })();
      return closing;
    },
  };
}
