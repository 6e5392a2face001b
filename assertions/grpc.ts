/**
 * gRPC answers compared: status and trailers (`grpc-status`, `grpc-message`,
 * `grpc-status-details-bin`), the number of messages, and every message field by field.
 *
 * Without a schema a message is read as protobuf wire format (core/protobuf.ts): fields by number,
 * nested messages where the bytes parse as one, repeated fields as lists. A path names field
 * numbers, `#2.3` (field 3 inside field 2), `#4[1]` (the second occurrence of field 4). Where one
 * side's length-delimited field reads as text and the other's as a message or bytes, the bytes
 * are compared, never the guesses. With `.proto` files (`--proto DIR`) messages are decoded with
 * names and types and compared like JSON (`$.items[3].price`); field numbers the schema does not
 * know are still compared by number (a field renamed and renumbered shows on both sides).
 * A streamed answer prefixes each path with its message's index: `[2]$.price`, `[2]#3`.
 */
import { gunzipSync, inflateSync } from 'node:zlib';
import type { HeaderList } from '../core/exchange.js';
import { decodeRaw, encodeRaw, grpcFrames, type RawField } from '../core/protobuf.js';
import { compareHeaders } from './headers.js';
import { diffJson } from './json-diff.js';
import type { Difference, Rating } from './types.js';

/** Names for messages (the shape core/protos.ts `loadProtos` returns). */
export interface MessageSchema {
  /** The message decoded with names, or undefined when the schema does not know the method. */
  decode(path: string, direction: 'request' | 'response', bytes: Uint8Array): unknown;
  /** Field numbers of the method's message type (top level), when known. */
  fields?(path: string, direction: 'request' | 'response'): ReadonlySet<number> | undefined;
}

export interface GrpcAnswer {
  /** `/package.Service/Method`. */
  path: string;
  /** Message payloads (decompressed), in order. */
  messages: Uint8Array[];
  /** Why some bytes could not be read as messages (a cut body, an unknown compression). */
  problem?: string;
  status?: number;
  message?: string;
  details?: string;
  trailers: HeaderList;
  /**
   * The status is the client's own (DEADLINE_EXCEEDED: the build reset the call at its deadline),
   * not one the build sent: there is no grpc-message, details or trailer of the build's to compare.
   */
  byClient?: string;
}

const header = (h: HeaderList | undefined, name: string): string | undefined => {
  if (!h) return undefined;
  for (const [n, v] of h) if (n.toLowerCase() === name) return v;
  return undefined;
};

export { isGrpc } from '../core/http.js';

function inflate(encoding: string | undefined, bytes: Uint8Array): Uint8Array {
  switch ((encoding ?? 'identity').toLowerCase()) {
    case 'gzip':
      return gunzipSync(bytes, { maxOutputLength: 64 << 20 });
    case 'deflate':
      return inflateSync(bytes, { maxOutputLength: 64 << 20 });
    case 'identity':
      return bytes;
    default:
      throw new Error(`grpc-encoding ${encoding} is not one retap decodes`);
  }
}

/** An answer's gRPC view: its messages and its status (trailers, or a trailers-only answer's headers). */
export function grpcAnswer(
  path: string,
  headers: HeaderList,
  body: Uint8Array,
  trailers: HeaderList | undefined,
): GrpcAnswer {
  const out: GrpcAnswer = { path, messages: [], trailers: trailers ?? [] };
  const { frames, rest } = grpcFrames(body);
  const encoding = header(headers, 'grpc-encoding');
  for (const f of frames) {
    try {
      out.messages.push(f.compressed ? inflate(encoding, f.bytes) : f.bytes);
    } catch (e) {
      out.problem = (e as Error).message;
      out.messages.push(f.bytes);
    }
  }
  if (rest > 0) out.problem = `${rest} bytes after the last whole message`;
  const status = header(trailers, 'grpc-status') ?? header(headers, 'grpc-status');
  if (status !== undefined && /^\d+$/.test(status.trim())) out.status = Number(status);
  const message = header(trailers, 'grpc-message') ?? header(headers, 'grpc-message');
  if (message !== undefined) {
    try {
      out.message = decodeURIComponent(message);
    } catch {
      out.message = message;
    }
  }
  const details = header(trailers, 'grpc-status-details-bin') ?? header(headers, 'grpc-status-details-bin');
  if (details !== undefined) out.details = details;
  return out;
}

const CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];
const codeName = (c: number | undefined): string => (c === undefined ? 'none' : `${c} ${CODES[c] ?? 'code'}`);

/** A field's value for messages: text as text, numbers as they are, a nested message as `{…}`. */
function show(f: RawField): string {
  switch (f.wire) {
    case 'varint':
    case 'i32':
    case 'i64':
      return String(f.value);
    case 'group':
      return '{group}';
    default:
      if ('string' in f)
        return JSON.stringify(f.string.length > 80 ? `${f.string.slice(0, 77)}...` : f.string);
      if ('message' in f) return `{${f.message.length} fields}`;
      return `bytes(${Buffer.from(f.bytes, 'base64').length})`;
  }
}

const lenBytes = (f: RawField): Buffer | undefined => {
  if (f.wire !== 'len') return undefined;
  if ('string' in f) return Buffer.from(f.string, 'utf8');
  if ('bytes' in f) return Buffer.from(f.bytes, 'base64');
  return undefined;
};

/** `#2` at the top (or after a message index or a prefix), `#2.3` inside a field. */
const child = (path: string, n: number): string => (path.includes('#') ? `${path}.${n}` : `${path}#${n}`);

/** Differences between two schema-less messages. */
export function diffRaw(a: RawField[], b: RawField[], path: string, out: Difference[], limit = 200): void {
  const group = (list: RawField[]): Map<number, RawField[]> => {
    const m = new Map<number, RawField[]>();
    for (const f of list) {
      const l = m.get(f.field);
      if (l) l.push(f);
      else m.set(f.field, [f]);
    }
    return m;
  };
  const ga = group(a);
  const gb = group(b);
  const push = (d: Omit<Difference, 'target'>): void => {
    if (out.length < limit) out.push({ target: 'body', ...d });
  };
  for (const [n, la] of ga) {
    const p = child(path, n);
    const lb = gb.get(n);
    if (!lb) {
      push({
        path: p,
        kind: 'missing-field',
        rating: 'breaking',
        recorded: show(la[0]!),
        message: `${p} is missing (was ${show(la[0]!)})`,
      });
      continue;
    }
    if (la.length !== lb.length)
      push({
        path: p,
        kind: 'array-length',
        rating: 'warning',
        recorded: la.length,
        candidate: lb.length,
        message: `${p} occurs ${lb.length} times (was ${la.length})`,
      });
    const many = la.length > 1 || lb.length > 1;
    for (let i = 0; i < Math.min(la.length, lb.length); i++)
      diffField(la[i]!, lb[i]!, many ? `${p}[${i}]` : p, out, limit);
  }
  for (const [n, lb] of gb) {
    if (ga.has(n)) continue;
    const p = child(path, n);
    push({
      path: p,
      kind: 'new-field',
      rating: 'warning',
      candidate: show(lb[0]!),
      message: `new field ${p} = ${show(lb[0]!)}`,
    });
  }
}

function diffField(a: RawField, b: RawField, path: string, out: Difference[], limit: number): void {
  if (out.length >= limit) return;
  if (a.wire !== b.wire) {
    out.push({
      target: 'body',
      path,
      kind: 'changed-type',
      rating: 'breaking',
      recorded: `${a.wire} ${show(a)}`,
      candidate: `${b.wire} ${show(b)}`,
      message: `${path} changed wire type: ${a.wire} ${show(a)} → ${b.wire} ${show(b)}`,
    });
    return;
  }
  if ((a.wire === 'len' || a.wire === 'group') && 'message' in a && 'message' in b) {
    diffRaw(a.message, b.message, path, out, limit);
    return;
  }
  // scalars, and length-delimited fields guessed differently: compare what was on the wire
  const ba = lenBytes(a);
  const bb = lenBytes(b);
  let same: boolean;
  if (a.wire === 'len') {
    const ea = ba ?? Buffer.from(encodeMessage(a));
    const eb = bb ?? Buffer.from(encodeMessage(b));
    same = ea.equals(eb);
  } else same = show(a) === show(b);
  if (same) return;
  out.push({
    target: 'body',
    path,
    kind: 'changed-value',
    rating: 'warning',
    recorded: show(a),
    candidate: show(b),
    message: `${path}: ${show(a)} → ${show(b)}`,
  });
}

/** A nested message's bytes, for comparing against a side that read the same bytes otherwise. */
const encodeMessage = (f: RawField): Uint8Array =>
  f.wire === 'len' && 'message' in f ? encodeRaw(f.message) : new Uint8Array();

const prefixOf = (i: number, stream: boolean): string => (stream ? `[${i}]` : '');

const JSON_RATING: Record<string, Rating> = {
  'changed-type': 'breaking',
  'missing-field': 'breaking',
  'new-field': 'warning',
  'changed-value': 'warning',
  'array-length': 'warning',
};

const preview = (v: unknown): string =>
  typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? 'undefined');

/** Differences from gRPC answer `a` (reference) to `b`. */
export function compareGrpc(a: GrpcAnswer, b: GrpcAnswer, schema?: MessageSchema): Difference[] {
  const out: Difference[] = [];
  if (a.status !== b.status) {
    out.push({
      target: 'status',
      path: 'grpc-status',
      kind: 'grpc-status',
      rating: 'breaking',
      recorded: a.status,
      candidate: b.status,
      message: `grpc-status ${codeName(a.status)} → ${codeName(b.status)}${b.message ? ` (${b.message})` : ''}`,
    });
  } else if (!a.byClient && !b.byClient && (a.message ?? '') !== (b.message ?? '')) {
    out.push({
      target: 'header',
      path: 'trailer:grpc-message',
      kind: 'changed-header',
      rating: 'warning',
      recorded: a.message,
      candidate: b.message,
      message: `grpc-message ${preview(a.message ?? '')} → ${preview(b.message ?? '')}`,
    });
  }
  // a status the client made up has no details or trailers of the build's to compare
  const sent = !a.byClient && !b.byClient;
  if (sent && (a.details ?? '') !== (b.details ?? '')) {
    const da = a.details ? decodeRaw(Buffer.from(a.details, 'base64')) : [];
    const db = b.details ? decodeRaw(Buffer.from(b.details, 'base64')) : [];
    if (da && db) diffRaw(da, db, 'details', out);
    else
      out.push({
        target: 'header',
        path: 'trailer:grpc-status-details-bin',
        kind: 'changed-header',
        rating: 'warning',
        recorded: a.details,
        candidate: b.details,
        message: 'grpc-status-details-bin differs',
      });
  }
  const skip = new Set(['grpc-status', 'grpc-message', 'grpc-status-details-bin']);
  for (const d of compareHeaders(
    sent ? a.trailers.filter(([n]) => !skip.has(n.toLowerCase())) : [],
    sent ? b.trailers.filter(([n]) => !skip.has(n.toLowerCase())) : [],
  )) {
    d.path = d.path.replace(/^header:/, 'trailer:');
    d.message = `trailer ${d.message}`;
    out.push(d);
  }
  const stream = a.messages.length !== 1 || b.messages.length !== 1;
  if (a.messages.length !== b.messages.length) {
    const fewer = b.messages.length < a.messages.length;
    out.push({
      target: 'body',
      path: 'messages',
      kind: 'message-count',
      rating: 'breaking',
      recorded: a.messages.length,
      candidate: b.messages.length,
      message: fewer
        ? `${a.messages.length - b.messages.length} of ${a.messages.length} answer messages missing (got ${b.messages.length})`
        : `${b.messages.length - a.messages.length} extra answer messages (${b.messages.length}, was ${a.messages.length})`,
    });
  }
  const n = Math.min(a.messages.length, b.messages.length);
  for (let i = 0; i < n && out.length < 200; i++) {
    const ma = a.messages[i]!;
    const mb = b.messages[i]!;
    if (Buffer.from(ma).equals(Buffer.from(mb))) continue;
    const pre = prefixOf(i, stream);
    const named = schema ? decodeNamed(schema, a.path, ma, mb) : undefined;
    if (named) {
      for (const d of diffJson(named[0], named[1])) {
        const path = `${pre}${d.path}`;
        const rating = JSON_RATING[d.kind] ?? 'warning';
        const base = {
          target: 'body' as const,
          path,
          kind: d.kind,
          rating,
          recorded: d.recorded,
          candidate: d.candidate,
        };
        out.push({
          ...base,
          message:
            d.kind === 'missing-field'
              ? `${path} is missing (was ${preview(d.recorded)})`
              : d.kind === 'new-field'
                ? `new field ${path} = ${preview(d.candidate)}`
                : d.kind === 'array-length'
                  ? `${path} has ${String(d.candidate)} items (was ${String(d.recorded)})`
                  : `${path}: ${preview(d.recorded)} → ${preview(d.candidate)}`,
        });
      }
      // what the schema does not name: compared by number
      const known = schema?.fields?.(a.path, 'response');
      const ra = decodeRaw(ma);
      const rb = decodeRaw(mb);
      if (known && ra && rb)
        diffRaw(
          ra.filter((f) => !known.has(f.field)),
          rb.filter((f) => !known.has(f.field)),
          pre,
          out,
        );
      continue;
    }
    const ra = decodeRaw(ma);
    const rb = decodeRaw(mb);
    if (ra && rb) diffRaw(ra, rb, pre, out);
    else
      out.push({
        target: 'body',
        path: `${pre || '[0]'}`,
        kind: 'changed-binary',
        rating: 'warning',
        recorded: `${ma.length} bytes`,
        candidate: `${mb.length} bytes`,
        message: `message ${i} differs and is not protobuf wire format (${ma.length} → ${mb.length} bytes)`,
      });
  }
  return out;
}

function decodeNamed(
  schema: MessageSchema,
  path: string,
  a: Uint8Array,
  b: Uint8Array,
): [unknown, unknown] | undefined {
  try {
    const va = schema.decode(path, 'response', a);
    const vb = schema.decode(path, 'response', b);
    return va === undefined || vb === undefined ? undefined : [va, vb];
  } catch {
    return undefined;
  }
}
