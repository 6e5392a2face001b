/**
 * The build's own gRPC schema, asked over the standard server reflection service
 * (`grpc.reflection.v1.ServerReflection/ServerReflectionInfo`, else `v1alpha`): one bidirectional
 * stream on one HTTP/2 session — `list_services`, then `file_containing_symbol` for each service,
 * then `file_by_filename` for any import the answers did not carry. The result is the serialized
 * FileDescriptorProtos (what `protoc` would have produced from the build's .proto files), kept with
 * the replay's results so `retap report` names fields without the build running
 * (core/protos.ts `schemaFromDescriptors`).
 *
 * Asked once per run, after the build is ready and before the first replayed request, over the
 * connection settings the replay uses (h2c, or TLS with ALPN h2 like runner/h2.ts). A build that
 * does not offer reflection (UNIMPLEMENTED, a reset, no answer in time) is an outcome, never an
 * error: the comparison stays schema-less and the report says why.
 */
import http2 from 'node:http2';
import protobuf from 'protobufjs';
import { grpcFrame, grpcFrames } from '../core/protobuf.js';
import type { GrpcReflection } from '../core/results.js';

export type ReflectionOutcome = GrpcReflection;

export interface ReflectionTarget {
  host: string;
  port: number;
  tls: boolean;
  /** TLS server name (SNI), as the replay sends it. */
  servername?: string | undefined;
  /** `:authority` of the reflection stream (default host:port). */
  authority?: string | undefined;
  /** Longest the whole conversation may take. */
  timeoutMs: number;
}

const APIS = ['grpc.reflection.v1', 'grpc.reflection.v1alpha'];
/** Bounds: a hostile or broken build cannot keep the replay asking forever. */
const MAX_FILES = 500;
const MAX_BYTES = 32 << 20;

// ServerReflectionRequest: host = 1, file_by_filename = 3, file_containing_symbol = 4, list_services = 7
function request(field: 3 | 4 | 7, value: string): Uint8Array {
  return protobuf.Writer.create()
    .uint32((field << 3) | 2)
    .string(value)
    .finish();
}

type Answer =
  | { kind: 'services'; names: string[] }
  | { kind: 'files'; files: Uint8Array[] }
  | { kind: 'error'; code: number; message: string }
  | { kind: 'other' };

/** ServerReflectionResponse: file_descriptor_response = 4, list_services_response = 6, error_response = 7. */
export function decodeAnswer(bytes: Uint8Array): Answer {
  const r = protobuf.Reader.create(bytes);
  let out: Answer = { kind: 'other' };
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if ((tag & 7) !== 2 || (field !== 4 && field !== 6 && field !== 7)) {
      r.skipType(tag & 7);
      continue;
    }
    const inner = protobuf.Reader.create(r.bytes());
    if (field === 4) {
      const files: Uint8Array[] = [];
      while (inner.pos < inner.len) {
        const t = inner.uint32();
        if (t === ((1 << 3) | 2)) files.push(inner.bytes());
        else inner.skipType(t & 7);
      }
      out = { kind: 'files', files };
    } else if (field === 6) {
      const names: string[] = [];
      while (inner.pos < inner.len) {
        const t = inner.uint32();
        if (t === ((1 << 3) | 2)) {
          const svc = protobuf.Reader.create(inner.bytes());
          while (svc.pos < svc.len) {
            const st = svc.uint32();
            if (st === ((1 << 3) | 2)) names.push(svc.string());
            else svc.skipType(st & 7);
          }
        } else inner.skipType(t & 7);
      }
      out = { kind: 'services', names };
    } else {
      let code = 0;
      let message = '';
      while (inner.pos < inner.len) {
        const t = inner.uint32();
        if (t === 1 << 3) code = inner.int32();
        else if (t === ((2 << 3) | 2)) message = inner.string();
        else inner.skipType(t & 7);
      }
      out = { kind: 'error', code, message };
    }
  }
  return out;
}

/** A FileDescriptorProto's name (1) and imports (3). */
export function fileNameAndImports(bytes: Uint8Array): { name: string; imports: string[] } {
  const r = protobuf.Reader.create(bytes);
  let name = '';
  const imports: string[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | 2)) name = r.string();
    else if (tag === ((3 << 3) | 2)) imports.push(r.string());
    else r.skipType(tag & 7);
  }
  return { name, imports };
}

/** One reflection stream: messages written, answers read one at a time. */
class Conversation {
  private readonly queue: Uint8Array[] = [];
  private buffered: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private ended: string | undefined;
  status: number | undefined;
  statusMessage = '';
  received = 0;

  constructor(private readonly stream: http2.ClientHttp2Stream) {
    const takeStatus = (h: http2.IncomingHttpHeaders): void => {
      const s = h['grpc-status'];
      if (s !== undefined) this.status = Number(s);
      const m = h['grpc-message'];
      if (typeof m === 'string') this.statusMessage = safeDecode(m);
    };
    stream.on('response', (h) => {
      const st = Number(h[':status']);
      if (st !== 200) this.finish(`HTTP status ${st}`);
      takeStatus(h);
    });
    stream.on('trailers', takeStatus);
    stream.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      if (this.received > MAX_BYTES) {
        this.finish(`more than ${MAX_BYTES >> 20} MiB of reflection answers`);
        stream.close(http2.constants.NGHTTP2_CANCEL);
        return;
      }
      this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
      const { frames, rest } = grpcFrames(this.buffered);
      for (const f of frames) this.queue.push(new Uint8Array(f.bytes));
      this.buffered = Buffer.from(this.buffered.subarray(this.buffered.length - rest));
      this.wake();
    });
    stream.on('end', () => this.finish('the build ended the reflection stream'));
    stream.on('error', (e: Error) => this.finish(e.message));
    stream.on('close', () => {
      const code = stream.rstCode;
      this.finish(
        code ? `the build reset the reflection stream (HTTP/2 code ${code})` : 'the reflection stream closed',
      );
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private finish(why: string): void {
    this.ended ??= why;
    this.wake();
  }

  send(message: Uint8Array): void {
    if (!this.ended && !this.stream.destroyed) this.stream.write(grpcFrame(message));
  }

  /** The next answer, or a reason there is none. */
  async next(): Promise<Uint8Array | string> {
    for (;;) {
      const m = this.queue.shift();
      if (m) return m;
      if (this.ended) return this.statusText() ?? this.ended;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  statusText(): string | undefined {
    if (this.status === undefined || this.status === 0) return undefined;
    return `grpc-status ${this.status}${this.statusMessage ? ` (${this.statusMessage})` : ''}`;
  }

  /**
   * Done asking: half-close while the build's side is open (it ends the call), a plain close once
   * it has ended. (Never end() and close() together: node 20's http2 can spin on that pair.)
   */
  close(): void {
    const s = this.stream;
    if (s.destroyed || s.closed) return;
    if (this.ended !== undefined || s.readableEnded) s.close(http2.constants.NGHTTP2_NO_ERROR);
    else if (!s.writableEnded) s.end();
  }
}

const safeDecode = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/** Asks the build for its schema. Never throws: a build without reflection gets `error`. */
export async function askReflection(target: ReflectionTarget): Promise<ReflectionOutcome> {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const authority = target.authority ?? `${host}:${target.port}`;
  let session: http2.ClientHttp2Session;
  try {
    session = target.tls
      ? http2.connect(`https://${host}:${target.port}`, {
          rejectUnauthorized: false,
          ALPNProtocols: ['h2'],
          ...(target.servername && !/^[\d.:[\]]+$/.test(target.servername)
            ? { servername: target.servername }
            : {}),
        })
      : http2.connect(`http://${host}:${target.port}`);
  } catch (e) {
    return { error: `cannot connect to ask for reflection: ${(e as Error).message}` };
  }
  let sessionError: string | undefined;
  session.on('error', (e: Error) => {
    sessionError ??= e.message;
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ReflectionOutcome>((resolve) => {
    timer = setTimeout(
      () => resolve({ error: `no complete reflection answer within ${target.timeoutMs} ms` }),
      target.timeoutMs,
    );
  });
  const streams: Conversation[] = [];
  const ask = async (): Promise<ReflectionOutcome> => {
    const reasons: string[] = [];
    for (const api of APIS) {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request({
          ':method': 'POST',
          ':scheme': target.tls ? 'https' : 'http',
          ':authority': authority,
          ':path': `/${api}.ServerReflection/ServerReflectionInfo`,
          'content-type': 'application/grpc',
          te: 'trailers',
        });
      } catch (e) {
        return { error: sessionError ?? (e as Error).message };
      }
      const c = new Conversation(stream);
      streams.push(c);
      const outcome = await converse(api, c);
      c.close();
      if (outcome.files) return outcome;
      reasons.push(`${api}: ${outcome.error}`);
      // UNIMPLEMENTED (12) or no answer at all: try the older service; anything else is the answer
      if (c.status !== undefined && c.status !== 12) break;
      if (sessionError) break;
    }
    return { error: `the build offers no gRPC server reflection (${reasons.join('; ')})` };
  };
  try {
    return await Promise.race([ask(), timeout]);
  } catch (e) {
    return { error: `reflection failed: ${(e as Error).message}` };
  } finally {
    clearTimeout(timer);
    for (const c of streams) c.close();
    await new Promise<void>((r) => {
      if (session.closed || session.destroyed) return r();
      const t = setTimeout(() => {
        session.destroy();
        r();
      }, 500);
      t.unref();
      session.close(() => {
        clearTimeout(t);
        r();
      });
    });
  }
}

async function converse(api: string, c: Conversation): Promise<ReflectionOutcome> {
  c.send(request(7, ''));
  const first = await c.next();
  if (typeof first === 'string') return { error: first };
  const listed = decodeAnswer(first);
  if (listed.kind === 'error') return { error: `list_services: ${listed.message || `code ${listed.code}`}` };
  if (listed.kind !== 'services') return { error: 'list_services: an answer of another kind' };
  const services = listed.names.filter((n) => !n.startsWith('grpc.reflection.'));
  const files = new Map<string, Uint8Array>();
  const missing: string[] = [];
  const keep = (list: Uint8Array[]): void => {
    for (const f of list) {
      if (files.size >= MAX_FILES) return;
      const { name } = fileNameAndImports(f);
      if (!files.has(name)) files.set(name, f);
    }
  };
  // one question at a time: an answer is matched to the question it follows
  for (const svc of services) {
    c.send(request(4, svc));
    const m = await c.next();
    if (typeof m === 'string') return { error: `file_containing_symbol ${svc}: ${m}` };
    const a = decodeAnswer(m);
    if (a.kind === 'files') keep(a.files);
    else missing.push(`${svc}: ${a.kind === 'error' ? a.message || `code ${a.code}` : 'no descriptor'}`);
  }
  // imports an answer named but did not carry (servers usually send them along)
  const asked = new Set<string>();
  for (let round = 0; round < MAX_FILES && files.size < MAX_FILES; round++) {
    const need = [...files.values()]
      .flatMap((f) => fileNameAndImports(f).imports)
      .find((n) => !files.has(n) && !asked.has(n));
    if (need === undefined) break;
    asked.add(need);
    c.send(request(3, need));
    const m = await c.next();
    if (typeof m === 'string') break;
    const a = decodeAnswer(m);
    if (a.kind === 'files') keep(a.files);
    else missing.push(`${need}: ${a.kind === 'error' ? a.message || `code ${a.code}` : 'not given'}`);
  }
  if (files.size === 0)
    return { error: `no descriptors for ${services.join(', ') || 'any service'} (${missing.join('; ')})` };
  return {
    api,
    services,
    files: [...files.values()].map((f) => Buffer.from(f).toString('base64')),
    ...(missing.length ? { missing } : {}),
  };
}
