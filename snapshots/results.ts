/**
 * The replay results file (`results.json`): a ReplayResults (core/results.ts) with exchanges and
 * byte fields encoded as in snapshot lines. Written atomically (temp file + rename, 0600).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ErrorCodes, RetapError } from '../core/errors.js';
import type { Exchange } from '../core/exchange.js';
import {
  type ClientView,
  RESULTS_FORMAT,
  RESULTS_FORMAT_VERSION,
  type ReplayResults,
} from '../core/results.js';
import { fromStored, toStored } from './format.js';

export const RESULTS_FILE = 'results.json';

const b64 = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
const unb64 = (s: string | undefined): Uint8Array | undefined =>
  s === undefined ? undefined : new Uint8Array(Buffer.from(s, 'base64'));

function encodeClient(c: ClientView): Record<string, unknown> {
  return { ...c, body: b64(c.body), responseBody: b64(c.responseBody) };
}

function decodeClient(c: Record<string, unknown>): ClientView {
  const out = { ...c } as unknown as ClientView;
  const body = unb64(c.body as string | undefined);
  const responseBody = unb64(c.responseBody as string | undefined);
  if (body) out.body = body;
  else delete out.body;
  if (responseBody) out.responseBody = responseBody;
  else delete out.responseBody;
  return out;
}

const enc = (ex: Exchange): Record<string, unknown> => toStored(ex);
const dec = (s: unknown): Exchange => fromStored(s);

export function encodeResults(r: ReplayResults): string {
  const plain = {
    ...r,
    recorded: r.recorded.map((it) => ({ ...it, exchange: enc(it.exchange), outbound: it.outbound.map(enc) })),
    runs: r.runs.map((run) => ({
      ...run,
      items: run.items.map((it) => ({
        ...it,
        client: encodeClient(it.client),
        live: it.live ? enc(it.live) : undefined,
        outbound: it.outbound.map(enc),
      })),
    })),
  };
  try {
    return `${JSON.stringify(plain, null, 1)}\n`;
  } catch (e) {
    throw tooLarge(
      e,
      r.runs.reduce((n, run) => n + run.items.length, 0),
    );
  }
}

/**
 * results.json is one JSON document, and one JS string holds at most 512 MiB: past that a replay's
 * results cannot be written. Turns V8's RangeError into what happened and what to do.
 */
export function tooLarge(e: unknown, items: number): unknown {
  if (!(e instanceof RangeError)) return e;
  return new RetapError(
    ErrorCodes.RESULTS_TOO_LARGE,
    `the results of ${items} replayed requests do not fit in one results file (a JSON document is limited to 512 MiB)`,
    {
      cause: e,
      hint: 'Replay fewer requests per run: split the snapshot with `retap snapshot filter` (by route or time) and replay the parts.',
    },
  );
}

export function decodeResults(text: string, where = RESULTS_FILE): ReplayResults {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new RetapError(ErrorCodes.SNAPSHOT_INVALID, `${where}: not JSON (${(e as Error).message})`, {
      hint: 'Point at the results.json that `retap replay` wrote.',
    });
  }
  if (raw.format !== RESULTS_FORMAT || raw.formatVersion !== RESULTS_FORMAT_VERSION) {
    throw new RetapError(
      ErrorCodes.SNAPSHOT_INVALID,
      `${where}: not a retap results file (format ${String(raw.format)} v${String(raw.formatVersion)})`,
      {
        hint: `Expected format ${RESULTS_FORMAT} version ${RESULTS_FORMAT_VERSION}.`,
      },
    );
  }
  // biome-ignore lint/suspicious/noExplicitAny: shape checked above, fields decoded below
  const r = raw as any;
  return {
    ...r,
    // biome-ignore lint/suspicious/noExplicitAny: see above
    recorded: r.recorded.map((it: any) => ({
      ...it,
      exchange: dec(it.exchange),
      outbound: it.outbound.map(dec),
    })),
    // biome-ignore lint/suspicious/noExplicitAny: see above
    runs: r.runs.map((run: any) => ({
      ...run,
      // biome-ignore lint/suspicious/noExplicitAny: see above
      items: run.items.map((it: any) => {
        const item = { ...it, client: decodeClient(it.client), outbound: it.outbound.map(dec) };
        if (it.live) item.live = dec(it.live);
        else delete item.live;
        return item;
      }),
    })),
  } as ReplayResults;
}

/** Writes `dir/results.json` atomically; returns its path. */
export async function writeResults(dir: string, r: ReplayResults): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, RESULTS_FILE);
  const tmp = join(dirname(path), `.${RESULTS_FILE}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, encodeResults(r), { mode: 0o600 });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return path;
}

/** Reads a results file, or `DIR/results.json` when given a directory. */
export async function readResults(pathOrDir: string): Promise<ReplayResults> {
  let path = pathOrDir;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EISDIR') {
      path = join(pathOrDir, RESULTS_FILE);
      text = await readFile(path, 'utf8').catch((e2: unknown) => {
        throw new RetapError(ErrorCodes.SNAPSHOT_NOT_FOUND, `no ${RESULTS_FILE} in ${pathOrDir}`, {
          cause: e2,
          hint: 'Run `retap replay … --out DIR` first.',
        });
      });
    } else {
      throw new RetapError(
        ErrorCodes.SNAPSHOT_NOT_FOUND,
        `cannot read results ${pathOrDir}: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }
  return decodeResults(text, path);
}
