/**
 * HAR 1.2 export and import. Export streams entries (each checked against the HAR schema), so a
 * large snapshot never sits in memory; retap-only facts ride in `_retap` so a round trip keeps ids,
 * direction and exact timings. Import reads one HAR document (JSON.parse of the whole file: HAR is
 * a single JSON value), checks it against the schema and writes a snapshot through the writer.
 */
import { createWriteStream } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { isDbProtocol } from '../core/db.js';
import { type Body, type Exchange, type HeaderList, headerValue } from '../core/exchange.js';
import { ErrorCodes, RetapError } from '../core/errors.js';
import { requestAuthority } from '../core/http.js';
import { openSnapshot } from './reader.js';
import { checkValue, formatIssue, issuesFrom, subValidator } from './schema.js';
import { chunkedWriter, closeStream } from './sorter.js';
import { FILE_MODE } from './store.js';
import { createSnapshotWriter, type SnapshotSource, type SnapshotWriter } from './writer.js';
import type { RedactionConfig } from './redaction.js';
import type { Manifest } from './format.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

interface NV {
  name: string;
  value: string;
}

// biome-ignore lint/suspicious/noExplicitAny: HAR is schema-checked before use
type Har = any;

function bytesToText(data: Uint8Array): { text: string; base64: boolean } {
  try {
    return { text: utf8.decode(data), base64: false };
  } catch {
    return { text: Buffer.from(data).toString('base64'), base64: true };
  }
}

function nv(h: HeaderList): NV[] {
  return h.map(([name, value]) => ({ name, value }));
}

function requestCookies(h: HeaderList): NV[] {
  const out: NV[] = [];
  for (const [n, v] of h) {
    if (n.toLowerCase() !== 'cookie') continue;
    for (const part of v.split(/;\s*/)) {
      const eq = part.indexOf('=');
      if (eq > 0) out.push({ name: part.slice(0, eq), value: part.slice(eq + 1) });
    }
  }
  return out;
}

function responseCookies(h: HeaderList): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const [n, v] of h) {
    if (n.toLowerCase() !== 'set-cookie') continue;
    const [first, ...attrs] = v.split(/;\s*/);
    const eq = first!.indexOf('=');
    if (eq <= 0) continue;
    const c: Record<string, unknown> = { name: first!.slice(0, eq), value: first!.slice(eq + 1) };
    for (const a of attrs) {
      const [k, val] = a.split('=') as [string, string | undefined];
      const key = k.toLowerCase();
      if (key === 'path' && val) c.path = val;
      else if (key === 'domain' && val) c.domain = val;
      else if (key === 'expires' && val) c.expires = val;
      else if (key === 'httponly') c.httpOnly = true;
      else if (key === 'secure') c.secure = true;
    }
    out.push(c);
  }
  return out;
}

function queryString(target: string): NV[] {
  const q = target.indexOf('?');
  if (q === -1) return [];
  const out: NV[] = [];
  for (const [name, value] of new URLSearchParams(target.slice(q + 1))) out.push({ name, value });
  return out;
}

function hostPort(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

function urlOf(ex: Exchange): string {
  // a database call: the server's address under its protocol's scheme; the query rides in _retap
  if (isDbProtocol(ex.protocol)) return `${ex.protocol}://${hostPort(ex.peer.host ?? ex.peer.addr, ex.peer.port)}/`;
  if (/^https?:\/\//i.test(ex.request.target)) return ex.request.target;
  const scheme = ex.tls ? 'https' : 'http';
  const h = ex.request.headers;
  const host =
    requestAuthority(h, ex.extras) ??
    (ex.direction === 'outbound' ? hostPort(ex.peer.host ?? ex.peer.addr, ex.peer.port) : hostPort(ex.service.addr, ex.service.port));
  return `${scheme}://${host}${ex.request.target.startsWith('/') ? '' : '/'}${ex.request.target}`;
}

const ms = (ns: number | undefined) => (ns === undefined ? 0 : Math.max(0, ns) / 1e6);

export function exchangeToEntry(ex: Exchange): Record<string, unknown> {
  const req = ex.request;
  const res = ex.response;
  const reqText = req.body.data.length > 0 ? bytesToText(req.body.data) : undefined;
  const contentType = (h: HeaderList) => headerValue(h, 'content-type') ?? '';
  const t = ex.timing;
  const send = ms(t.requestEndNs);
  const wait = t.responseStartNs === undefined ? 0 : ms(t.responseStartNs - t.requestEndNs);
  const receive = t.responseEndNs === undefined || t.responseStartNs === undefined ? 0 : ms(t.responseEndNs - t.responseStartNs);
  const request: Record<string, unknown> = {
    method: req.method,
    url: urlOf(ex),
    httpVersion: req.version,
    cookies: requestCookies(req.headers),
    headers: nv(req.headers),
    queryString: queryString(req.target),
    headersSize: -1,
    bodySize: req.body.size,
  };
  if (reqText) {
    request.postData = { mimeType: contentType(req.headers), text: reqText.text, ...(reqText.base64 ? { _encoding: 'base64' } : {}) };
  }
  let response: Record<string, unknown>;
  if (res) {
    const shown = res.body.decoded ?? res.body.data;
    const body = shown.length > 0 ? bytesToText(shown) : undefined;
    const content: Record<string, unknown> = { size: shown.length, mimeType: contentType(res.headers) };
    if (res.body.decoded) content.compression = Math.max(0, res.body.decoded.length - res.body.data.length);
    if (body) {
      content.text = body.text;
      if (body.base64) content.encoding = 'base64';
    }
    response = {
      status: res.status,
      statusText: res.reason ?? '',
      httpVersion: res.version,
      cookies: responseCookies(res.headers),
      headers: nv(res.headers),
      content,
      redirectURL: headerValue(res.headers, 'location') ?? '',
      headersSize: -1,
      bodySize: res.body.size,
    };
  } else {
    response = {
      status: 0,
      statusText: '',
      httpVersion: '',
      cookies: [],
      headers: [],
      content: { size: 0, mimeType: '' },
      redirectURL: '',
      headersSize: -1,
      bodySize: -1,
      _error: 'no response recorded',
    };
  }
  const retap: Record<string, unknown> = {
    id: ex.id,
    direction: ex.direction,
    protocol: ex.protocol,
    tls: ex.tls,
    service: ex.service,
    peer: ex.peer,
    connection: ex.connection,
    timing: ex.timing,
    requestTruncated: req.body.truncated,
    responseTruncated: res?.body.truncated ?? false,
  };
  if (ex.notes) retap.notes = ex.notes;
  if (ex.extras) retap.extras = ex.extras;
  if (isDbProtocol(ex.protocol)) retap.target = req.target;
  if (res?.body.decoded === undefined && res && headerValue(res.headers, 'content-encoding')) retap.rawEncodedBody = true;
  return {
    startedDateTime: new Date(Math.floor(t.startUs / 1000)).toISOString(),
    time: send + wait + receive,
    request,
    response,
    cache: {},
    timings: { blocked: -1, dns: -1, connect: -1, ssl: -1, send, wait, receive },
    ...(ex.direction === 'outbound' ? { serverIPAddress: ex.peer.addr } : { serverIPAddress: ex.service.addr }),
    connection: ex.connection.id,
    _retap: retap,
  };
}

export interface HarExportResult {
  entries: number;
  path: string;
  /** Quarantined exchanges left out: HAR has no place for a request that was never seen whole. */
  quarantined: number;
}

/** Export a snapshot as HAR to `out` (written atomically) or to stdout when out is '-'. */
export async function exportHar(source: string, out: string, opts: { version?: string; onProgress?: (n: number) => void } = {}): Promise<HarExportResult> {
  const snap = await openSnapshot(source);
  const checkEntry = subValidator('har', 'entry');
  const toStdout = out === '-';
  const temp = `${out}.tmp-${process.pid}`;
  const stream = toStdout ? process.stdout : createWriteStream(temp, { mode: FILE_MODE });
  const w = chunkedWriter(stream);
  let n = 0;
  let quarantined = 0;
  try {
    const creator = { name: 'retap', version: opts.version ?? '0' };
    const comment = `snapshot ${snap.manifest.name}@v${snap.manifest.version} ${snap.manifest.hash}`;
    await w.write(`{"log":{"version":"1.2","creator":${JSON.stringify(creator)},"comment":${JSON.stringify(comment)},"entries":[`);
    for await (const ex of snap.exchanges()) {
      if (ex.quarantine) {
        quarantined++;
        continue;
      }
      const entry = exchangeToEntry(ex);
      if (!checkEntry(entry)) {
        const issue = issuesFrom(checkEntry.errors, `HAR entry ${n} (${ex.id})`)[0]!;
        throw new RetapError(ErrorCodes.INTERNAL, `exported HAR would be invalid: ${formatIssue(issue)}`);
      }
      await w.write(`${n === 0 ? '\n' : ',\n'}${JSON.stringify(entry)}`);
      n++;
      if (opts.onProgress && n % 5000 === 0) opts.onProgress(n);
    }
    await w.write('\n]}}\n');
    await w.flush();
    if (!toStdout) {
      await closeStream(stream as NodeJS.WritableStream);
      await rename(temp, out);
    }
  } catch (e) {
    if (!toStdout) {
      (stream as NodeJS.WritableStream).end();
      await rm(temp, { force: true });
    }
    throw e;
  }
  return { entries: n, path: out, quarantined };
}

function decodeText(text: string | undefined, base64: boolean): Uint8Array {
  if (text === undefined || text === '') return new Uint8Array(0);
  const b = Buffer.from(text, base64 ? 'base64' : 'utf8');
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

function pairs(list: NV[] | undefined): HeaderList {
  return (list ?? []).map((h) => [h.name, h.value]);
}

function encodeAs(encoding: string, data: Uint8Array): Uint8Array | undefined {
  const e = encoding.trim().toLowerCase();
  if (e === 'gzip' || e === 'x-gzip') return gzipSync(data);
  if (e === 'deflate') return deflateSync(data);
  if (e === 'br') return brotliCompressSync(data);
  if (e === 'identity' || e === '') return data;
  return undefined;
}

function protocolOf(version: string): { protocol: string; version: string } {
  const v = version.toLowerCase();
  if (v === 'h2' || v.startsWith('http/2')) return { protocol: 'http2', version: 'HTTP/2' };
  if (v === 'h3' || v.startsWith('http/3')) return { protocol: 'http3', version: 'HTTP/3' };
  if (v === 'http/1.0') return { protocol: 'http1', version: 'HTTP/1.0' };
  return { protocol: 'http1', version: version === '' ? 'HTTP/1.1' : version.toUpperCase() };
}

/** One HAR entry → Exchange, or a reason to skip it. */
export function entryToExchange(e: Har, index: number, direction: 'inbound' | 'outbound', order: Map<string, number>): Exchange | string {
  let url: URL;
  try {
    url = new URL(e.request.url);
  } catch {
    return `entry ${index}: url '${String(e.request.url).slice(0, 60)}' is not absolute`;
  }
  const r = e._retap as Record<string, unknown> | undefined;
  const db = r !== undefined && typeof r.protocol === 'string' && isDbProtocol(r.protocol) && `${r.protocol}:` === url.protocol;
  if (url.protocol !== 'http:' && url.protocol !== 'https:' && !db) return `entry ${index}: ${url.protocol} URL`;
  const tls = url.protocol === 'https:';
  const port = url.port ? Number(url.port) : tls ? 443 : 80;
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const ip = typeof e.serverIPAddress === 'string' && e.serverIPAddress !== '' ? e.serverIPAddress.replace(/^\[|\]$/g, '') : hostname;
  const conn = r ? (r.connection as Exchange['connection']) : undefined;
  const connId = conn?.id ?? `har-${String(e.connection ?? 'c0')}`;
  const ord = conn?.order ?? order.get(connId) ?? 0;
  order.set(connId, ord + 1);
  const reqV = protocolOf(String(e.request.httpVersion ?? ''));
  const req = e.request;
  const reqData = decodeText(req.postData?.text, req.postData?._encoding === 'base64');
  const reqTrunc = r ? r.requestTruncated === true : req.bodySize > 0 && req.postData?.text === undefined;
  const reqBody: Body = { data: reqData, size: reqTrunc ? Math.max(req.bodySize, reqData.length) : reqData.length, truncated: reqTrunc };
  const started = Date.parse(e.startedDateTime);
  const tm = e.timings;
  const before = Math.max(0, tm.blocked ?? 0) + Math.max(0, tm.dns ?? 0) + Math.max(0, tm.connect ?? 0);
  const ns = (x: number) => Math.round(Math.max(0, x) * 1e6);
  const timing: Exchange['timing'] = r?.timing
    ? (r.timing as Exchange['timing'])
    : {
        startUs: Math.round((started + before) * 1000),
        requestEndNs: ns(tm.send),
        responseStartNs: ns(tm.send + tm.wait),
        responseEndNs: ns(tm.send + tm.wait + tm.receive),
      };
  const notes: string[] = r?.notes ? [...(r.notes as string[])] : [];
  const ex: Exchange = {
    id: (r?.id as string | undefined) ?? `${connId}#${ord}`,
    protocol: (r?.protocol as string | undefined) ?? reqV.protocol,
    direction: (r?.direction as Exchange['direction'] | undefined) ?? direction,
    tls: (r?.tls as boolean | undefined) ?? tls,
    service: (r?.service as Exchange['service'] | undefined) ??
      (direction === 'inbound' ? { addr: ip, port, name: hostname } : { addr: '0.0.0.0', port: 0 }),
    peer: (r?.peer as Exchange['peer'] | undefined) ?? (direction === 'inbound' ? { addr: '0.0.0.0', port: 0 } : { addr: ip, port, host: hostname }),
    connection: conn ?? { id: connId, order: ord },
    request: {
      method: req.method,
      target: db && typeof r?.target === 'string' ? r.target : `${url.pathname}${url.search}`,
      version: db ? String(req.httpVersion ?? '') : reqV.version,
      headers: pairs(req.headers),
      body: reqBody,
    },
    timing,
  };
  const res = e.response;
  if (res.status > 0) {
    const headers = pairs(res.headers);
    const shown = decodeText(res.content?.text, res.content?.encoding === 'base64');
    const missing = res.content?.text === undefined && (res.content?.size ?? 0) > 0;
    const ce = headerValue(headers, 'content-encoding');
    let body: Body;
    if (r?.rawEncodedBody === true || !ce || missing) {
      const truncated = r ? r.responseTruncated === true : missing;
      body = { data: shown, size: truncated ? Math.max(res.content?.size ?? 0, res.bodySize, shown.length) : shown.length, truncated };
    } else {
      // HAR holds the decoded content: encode it again so the headers stay true for replay.
      const packed = encodeAs(ce, shown);
      if (packed && packed !== shown) body = { data: packed, size: packed.length, truncated: false, decoded: shown };
      else if (packed) body = { data: shown, size: shown.length, truncated: false };
      else {
        body = { data: shown, size: shown.length, truncated: false };
        const i = headers.findIndex(([n]) => n.toLowerCase() === 'content-encoding');
        headers.splice(i, 1);
        notes.push(`content-encoding '${ce}' removed: HAR held the decoded body`);
      }
      const cl = headers.findIndex(([n]) => n.toLowerCase() === 'content-length');
      if (cl !== -1) headers[cl] = [headers[cl]![0], String(body.data.length)];
    }
    const resV = protocolOf(String(res.httpVersion ?? ''));
    ex.response = { status: res.status, version: db ? String(res.httpVersion ?? '') : resV.version, headers, body };
    if (res.statusText) ex.response.reason = res.statusText;
  } else if (!notes.includes('no-response')) notes.push('no-response');
  if (notes.length > 0) ex.notes = notes;
  if (r?.extras) ex.extras = r.extras as Record<string, unknown>;
  return ex;
}

export interface HarImportOptions {
  dir: string;
  name: string;
  direction?: 'inbound' | 'outbound';
  gzip?: boolean;
  redaction?: RedactionConfig | false;
  source?: Partial<SnapshotSource>;
  onProgress?: (done: number, total: number) => void;
}

export async function readHar(file: string): Promise<Har> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new RetapError(ErrorCodes.SNAPSHOT_NOT_FOUND, `cannot read HAR file ${file}`, { cause: e, hint: 'Check the path.' });
  }
  let har: unknown;
  try {
    har = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    throw new RetapError(ErrorCodes.SNAPSHOT_INVALID, `${file}: not valid JSON (${(e as Error).message})`, {
      hint: 'A HAR file is one JSON document; export it again from the browser or tool.',
    });
  }
  checkValue(har, 'har', file);
  return har;
}

export async function importHar(file: string, opts: HarImportOptions): Promise<{ manifest: Manifest; path: string; imported: number; skipped: string[] }> {
  const har = await readHar(file);
  const entries = har.log.entries as Har[];
  const creator = har.log.creator as { name: string; version: string };
  const writer: SnapshotWriter = await createSnapshotWriter({
    dir: opts.dir,
    name: opts.name,
    source: { host: opts.source?.host ?? '', filters: opts.source?.filters ?? { har: file }, service: opts.source?.service, command: opts.source?.command },
    gzip: opts.gzip,
    redaction: opts.redaction,
    notes: [`imported from HAR (${creator.name} ${creator.version})`],
  });
  const order = new Map<string, number>();
  const skipped: string[] = [];
  let imported = 0;
  try {
    for (let i = 0; i < entries.length; i++) {
      const ex = entryToExchange(entries[i], i, opts.direction ?? 'inbound', order);
      if (typeof ex === 'string') skipped.push(ex);
      else {
        await writer.append(ex);
        imported++;
      }
      if (opts.onProgress && (i + 1) % 1000 === 0) opts.onProgress(i + 1, entries.length);
    }
    const manifest = await writer.finish({
      counters: { harEntries: entries.length, harSkipped: skipped.length },
      notes: skipped.length > 0 ? [`skipped ${skipped.length} non-HTTP or unusable entries`] : [],
    });
    return { manifest, path: writer.path, imported, skipped };
  } catch (e) {
    await writer.abort();
    throw e;
  }
}
