/**
 * Streaming snapshot writer: learn secrets → count → encode → bounded external sort (spills
 * encrypted with a key held in memory only) → one pass that redacts with the whole snapshot's
 * secret set and writes exchanges (optionally gzip) while hashing → small YAML files → manifest
 * → rename. Nothing is visible under the final name until everything is on disk, and no
 * credential value reaches the disk in clear (docs/snapshot-format.md, "Redaction").
 */

import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { ErrorCodes, RetapError } from '../core/errors.js';
import type { Exchange } from '../core/exchange.js';
import { logger } from '../core/log.js';
import {
  EXCHANGES_FILE,
  EXCHANGES_GZ_FILE,
  encodeExchange,
  FORMAT,
  FORMAT_VERSION,
  fromStored,
  MANIFEST_FILE,
  type Manifest,
  type RedactionSummary,
  sortKeys,
  TOKENS_FILE,
  TRANSFORMS_FILE,
} from './format.js';
import { contentHash, sha256Hex } from './hash.js';
import { admitStored } from './quarantine.js';
import { createRedactor, mergeSummaries, NEED_FULL, NEED_HEAD, type RedactionConfig } from './redaction.js';
import { validateTokens, validateTransforms } from './sidefiles.js';
import { chunkedWriter, createSorter } from './sorter.js';
import { createStats } from './stats.js';
import {
  cleanStaleTemps,
  commitVersion,
  FILE_MODE,
  fsyncPath,
  makeTempDir,
  nextVersion,
  writeTarget,
} from './store.js';
import { createDiscoverer } from './tokens/discover.js';
import { emitFiles } from './tokens/emit.js';
import { EMPTY_TOKENS, EMPTY_TRANSFORMS, type TokensFile, type TransformsFile, toYaml } from './yamlfile.js';

const log = logger('snapshots');

export interface SnapshotSource {
  host: string;
  service?: string;
  command?: string[];
  filters: Record<string, unknown>;
}

export interface WriterOptions {
  /** Store directory (next version) or an explicit `.../vN` directory to create. */
  dir: string;
  name: string;
  source: SnapshotSource;
  gzip?: boolean;
  redaction?: RedactionConfig | false;
  /** Parent version: a path/name openSnapshot accepts, or a `sha256:` hash. */
  parent?: string;
  /**
   * Discover tokens and emit transform rules from the sorted exchanges as they are written
   * (tokens.yaml/transforms.yaml), unless `transforms`/`tokens` are given. Capture turns it on.
   */
  discoverTokens?: boolean;
  /** For derived snapshots (filter, merge, import): side files and inherited redaction record. */
  transforms?: TransformsFile;
  tokens?: TokensFile;
  inheritedRedaction?: RedactionSummary[];
  notes?: string[];
  /** Memory for the in-memory sort and the learned secrets before spilling runs to disk (default 32 MiB). */
  memoryLimitBytes?: number;
  /** Values known to be secret and the placeholder each must get (e.g. live tokens of a replay). */
  secrets?: Iterable<[value: string, placeholder: string]>;
}

export interface FinishExtra {
  counters?: Record<string, number>;
  notes?: string[];
}

export interface SnapshotWriter {
  /** Learns the exchange's secrets and queues it; resolves when it is safe to send more (backpressure). */
  append(ex: Exchange): Promise<void>;
  finish(extra?: FinishExtra): Promise<Manifest>;
  abort(): Promise<void>;
  /** Final version directory once finished; the temp directory before. */
  readonly path: string;
}

async function resolveParent(parent: string | undefined): Promise<Manifest['parent']> {
  if (parent === undefined) return null;
  if (/^sha256:[0-9a-f]{64}$/.test(parent)) return { hash: parent };
  const { openSnapshot } = await import('./reader.js');
  const p = await openSnapshot(parent, { verify: false });
  return { hash: p.manifest.hash, version: p.manifest.version, name: p.manifest.name };
}

export async function createSnapshotWriter(opts: WriterOptions): Promise<SnapshotWriter> {
  if (!opts.name || opts.name.trim() === '') {
    throw new RetapError(ErrorCodes.USAGE, 'a snapshot needs a name', {
      hint: 'Pass name (e.g. the service name).',
    });
  }
  const target = writeTarget(opts.dir);
  if (target.version !== undefined) {
    const { existsSync } = await import('node:fs');
    if (existsSync(join(target.storeDir, `v${target.version}`))) {
      throw new RetapError(ErrorCodes.SNAPSHOT_EXISTS, `${opts.dir} already exists; versions are immutable`, {
        hint: 'Write to the store directory to get the next version number, or choose another path.',
      });
    }
  }
  const parent = await resolveParent(opts.parent);
  const removed = await cleanStaleTemps(target.storeDir);
  if (removed.length > 0)
    log.info(`removed ${removed.length} unfinished write(s) left in ${target.storeDir}`);
  const temp = await makeTempDir(target.storeDir);
  const redactor = createRedactor(opts.redaction);
  for (const [value, placeholder] of opts.secrets ?? []) redactor.assign(value, placeholder);
  const stats = createStats();
  // One memory budget: what the redactor keeps of the secrets it learned is taken from the
  // sort buffer (down to a quarter), so many distinct tokens do not add up to more memory.
  const budget = opts.memoryLimitBytes ?? 32 * 1024 * 1024;
  const sorter = createSorter(temp, () => Math.max(budget / 4, budget - redactor.bytes));
  let state: 'open' | 'finishing' | 'done' | 'aborted' = 'open';
  let finalPath = temp;

  const writeSmall = async (file: string, text: string) => {
    await writeFile(join(temp, file), text, { mode: FILE_MODE });
    return { path: file, sha256: sha256Hex(text), bytes: Buffer.byteLength(text) };
  };

  const writer: SnapshotWriter = {
    get path() {
      return finalPath;
    },
    async append(ex) {
      if (state !== 'open')
        throw new RetapError(ErrorCodes.INTERNAL, `append after ${state} on snapshot writer ${temp}`);
      // What cannot be a valid exchange is kept quarantined (snapshots/quarantine.ts), never the
      // recording. Redaction needs every secret of the snapshot (a token may show in an answer
      // before any request shows it is one): learn now, redact when the sorted lines are written.
      const { exchange: clean, stored } = admitStored(ex);
      const need = redactor.learn(clean);
      stats.add(clean);
      await sorter.push({ us: clean.timing.startUs, id: clean.id, line: JSON.stringify(stored), need });
    },
    async finish(extra = {}) {
      if (state !== 'open')
        throw new RetapError(ErrorCodes.INTERNAL, `finish after ${state} on snapshot writer ${temp}`);
      state = 'finishing';
      try {
        const gzip = opts.gzip === true;
        const file = gzip ? EXCHANGES_GZ_FILE : EXCHANGES_FILE;
        const out = createWriteStream(join(temp, file), { mode: FILE_MODE, highWaterMark: 1 << 20 });
        const gz = gzip ? createGzip({ level: 6 }) : undefined;
        if (gz) gz.pipe(out);
        const sink = gz ?? out;
        const hash = createHash('sha256');
        let bytes = 0;
        let lines = 0;
        const w = chunkedWriter(sink, (chunk) => {
          hash.update(chunk);
          bytes += Buffer.byteLength(chunk);
        });
        const discoverer =
          opts.discoverTokens && !opts.transforms && !opts.tokens ? createDiscoverer() : undefined;
        for await (const e of sorter.drain()) {
          let line = e.line;
          let ex: Exchange | undefined;
          // heads only (the usual Authorization/Cookie case): the line's JSON, bodies untouched
          let head: string | undefined = line;
          if (e.need === NEED_FULL) head = undefined;
          else if (e.need === NEED_HEAD || redactor.mentions(line)) head = redactor.applyLine(line);
          if (head !== undefined) line = head;
          else {
            const raw = fromStored(JSON.parse(line));
            ex = redactor.apply(raw);
            if (ex !== raw) line = encodeExchange(ex);
          }
          await w.write(`${line}\n`);
          discoverer?.add(ex ?? fromStored(JSON.parse(line)));
          lines++;
        }
        await w.flush();
        const closed = new Promise<void>((res, rej) => {
          out.once('close', () => res());
          out.once('error', rej);
        });
        sink.end();
        await closed;
        await sorter.dispose();
        await fsyncPath(join(temp, file));

        const discovered = discoverer ? emitFiles(discoverer.finish()) : undefined;
        const transforms = opts.transforms ?? discovered?.transforms ?? EMPTY_TRANSFORMS;
        const tokens = opts.tokens ?? discovered?.tokens ?? EMPTY_TOKENS;
        validateTransforms(transforms, TRANSFORMS_FILE);
        validateTokens(tokens, TOKENS_FILE);
        const tf = await writeSmall(TRANSFORMS_FILE, toYaml(transforms));
        const tk = await writeSmall(TOKENS_FILE, toYaml(tokens));
        const own = redactor.summary();
        const redaction = opts.inheritedRedaction ? mergeSummaries([own, ...opts.inheritedRedaction]) : own;
        const counters = sortKeys(extra.counters ?? {}) as Record<string, number>;
        const source: SnapshotSource = { host: opts.source.host || hostname(), filters: {} };
        if (opts.source.service !== undefined) source.service = opts.source.service;
        if (opts.source.command !== undefined) source.command = [...opts.source.command];
        source.filters = sortKeys(opts.source.filters ?? {}) as Record<string, unknown>;
        const manifest: Manifest = {
          format: FORMAT,
          formatVersion: FORMAT_VERSION,
          name: opts.name,
          version: target.version ?? (await nextVersion(target.storeDir)),
          hash: '',
          parent,
          created: new Date().toISOString(),
          source,
          // counted before redaction: routes and hosts go through it now
          counts: stats.counts((t) => redactor.redactText(t)),
          timeRange: stats.timeRange(),
          counters,
          notes: [...(opts.notes ?? []), ...(extra.notes ?? [])],
          redaction,
          files: {
            exchanges: { path: file, sha256: hash.digest('hex'), bytes, lines, gzip },
            transforms: tf,
            tokens: tk,
          },
        };
        manifest.hash = contentHash(manifest);
        // Commit: write the manifest for the version number we try, rename; on a lost race, retry.
        for (let attempt = 0; attempt < 20; attempt++) {
          await writeFile(join(temp, MANIFEST_FILE), toYaml(manifest), { mode: FILE_MODE });
          await fsyncPath(join(temp, MANIFEST_FILE));
          await fsyncPath(temp);
          const committed = await commitVersion(temp, target.storeDir, manifest.version);
          if (committed) {
            finalPath = committed;
            state = 'done';
            return manifest;
          }
          if (target.version !== undefined) {
            throw new RetapError(
              ErrorCodes.SNAPSHOT_EXISTS,
              `${opts.dir} was created by someone else meanwhile`,
              {
                hint: 'Write to the store directory instead to get the next free version.',
              },
            );
          }
          manifest.version = await nextVersion(target.storeDir);
        }
        throw new RetapError(
          ErrorCodes.INTERNAL,
          `could not find a free version number in ${target.storeDir}`,
        );
      } catch (e) {
        state = 'aborted';
        await rm(temp, { recursive: true, force: true });
        throw e;
      }
    },
    async abort() {
      if (state === 'done' || state === 'aborted') return;
      state = 'aborted';
      await sorter.dispose();
      await rm(temp, { recursive: true, force: true });
    },
  };
  return writer;
}
