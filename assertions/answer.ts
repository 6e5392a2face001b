/**
 * One answer as assertions see it (status, headers, body view, outbound calls, server-side
 * latency), taken from the recording, from the build's captured exchange, or from what the replay
 * client saw when capture missed it; and the comparison of two answers to the same request.
 */
import { type Exchange, type HeaderList, serverLatencyNs } from '../core/exchange.js';
import type { RecordedItem, RunItem } from '../core/results.js';
import { type BodyView, digest, firstTextDifference, viewBody, viewBytes } from './body.js';
import { compareGrpc, type GrpcAnswer, grpcAnswer, isGrpc, type MessageSchema } from './grpc.js';
import { compareHeaders } from './headers.js';
import { diffJson, jsonType } from './json-diff.js';
import { compareCalls } from './outbound.js';
import type { SchemaSet } from './schema.js';
import type { Difference, Rating } from './types.js';

export interface Answer {
  status?: number;
  headers: HeaderList;
  body: BodyView;
  /** Transport error or no answer at all. */
  error?: string;
  outbound: Exchange[];
  /** Server-side latency (eBPF, request's last byte → response's first byte), ms. */
  latencyMs?: number;
  /** True when taken from the replay client because capture missed the exchange. */
  clientView?: boolean;
  /** gRPC answers: messages, status and trailers (assertions/grpc.ts). */
  grpc?: GrpcAnswer;
}

const ms = (ex: Exchange): number | undefined => {
  const ns = serverLatencyNs(ex);
  return ns === undefined ? undefined : ns / 1e6;
};

function fromExchange(ex: Exchange, outbound: Exchange[]): Answer {
  const r = ex.response;
  if (!r) return { headers: [], body: { kind: 'empty', truncated: false }, error: 'no response', outbound };
  const a: Answer = {
    status: r.status,
    headers: r.headers,
    body: viewBody(r.body, r.headers),
    outbound,
    latencyMs: ms(ex),
  };
  if (isGrpc(r.headers) || isGrpc(ex.request.headers))
    a.grpc = grpcAnswer(ex.request.target, r.headers, r.body.data, r.trailers);
  return a;
}

export function recordedAnswer(item: RecordedItem): Answer {
  return fromExchange(item.exchange, item.outbound);
}

export function runAnswer(item: RunItem): Answer {
  if (item.live?.response) return fromExchange(item.live, item.outbound);
  const c = item.client;
  if (c.error !== undefined || c.status === undefined) {
    return {
      headers: [],
      body: { kind: 'empty', truncated: false },
      error: c.error ?? 'no response',
      outbound: item.outbound,
      clientView: true,
    };
  }
  const headers = c.responseHeaders ?? [];
  const a: Answer = {
    status: c.status,
    headers,
    body: viewBytes(c.responseBody, headers),
    outbound: item.outbound,
    clientView: true,
  };
  if (isGrpc(headers) || isGrpc(c.headers))
    a.grpc = grpcAnswer(c.target, headers, c.responseBody ?? new Uint8Array(), c.responseTrailers);
  if (a.grpc && c.deadline) a.grpc.byClient = c.deadline;
  return a;
}

const JSON_RATING: Record<string, Rating> = {
  'changed-type': 'breaking',
  'missing-field': 'breaking',
  'new-field': 'warning',
  'changed-value': 'warning',
  'array-length': 'warning',
};

const show = (v: unknown): string =>
  typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? 'undefined');

function bodyDiffs(a: BodyView, b: BodyView): Difference[] {
  if (a.truncated || b.truncated) return [];
  if (a.kind !== b.kind) {
    return [
      {
        target: 'body',
        path: 'body',
        kind: 'body-kind',
        rating: a.kind === 'json' ? 'breaking' : 'warning',
        recorded: a.kind,
        candidate: b.kind,
        message: `body was ${a.kind}, now ${b.kind}`,
      },
    ];
  }
  if (a.kind === 'json' && b.kind === 'json') {
    return diffJson(a.value, b.value).map((d) => {
      const base = {
        target: 'body' as const,
        path: d.path,
        kind: d.kind,
        rating: JSON_RATING[d.kind] ?? 'warning',
        recorded: d.recorded,
        candidate: d.candidate,
      };
      switch (d.kind) {
        case 'changed-type':
          return {
            ...base,
            message: `${d.path} changed type: ${jsonType(d.recorded)} ${show(d.recorded)} → ${jsonType(d.candidate)} ${show(d.candidate)}`,
          };
        case 'missing-field':
          return { ...base, message: `${d.path} is missing (was ${show(d.recorded)})` };
        case 'new-field':
          return { ...base, message: `new field ${d.path} = ${show(d.candidate)}` };
        case 'array-length':
          return {
            ...base,
            message: `${d.path} has ${String(d.candidate)} items (was ${String(d.recorded)})`,
          };
        default:
          return { ...base, message: `${d.path}: ${show(d.recorded)} → ${show(d.candidate)}` };
      }
    });
  }
  if (a.kind === 'text' && b.kind === 'text') {
    const d = firstTextDifference(a.text, b.text);
    if (!d) return [];
    return [
      {
        target: 'body',
        path: 'body',
        kind: 'changed-text',
        rating: 'warning',
        recorded: d.recorded.slice(0, 200),
        candidate: d.candidate.slice(0, 200),
        message: `text differs from line ${d.line}: ${show(d.recorded.slice(0, 80))} → ${show(d.candidate.slice(0, 80))}`,
      },
    ];
  }
  if (a.kind === 'binary' && b.kind === 'binary') {
    const da = digest(a.bytes);
    const db = digest(b.bytes);
    if (da === db) return [];
    return [
      {
        target: 'body',
        path: 'body',
        kind: 'changed-binary',
        rating: 'warning',
        recorded: `${a.bytes.length} bytes sha256:${da}`,
        candidate: `${b.bytes.length} bytes sha256:${db}`,
        message: `binary body differs (${a.bytes.length} → ${b.bytes.length} bytes)`,
      },
    ];
  }
  return [];
}

export interface CompareOptions {
  route: string;
  /** Schemas inferred from the recording; checked against the candidate's JSON answers. */
  schemas?: SchemaSet;
  /** Compare outbound calls (false when comparing two live runs whose calls were not captured). */
  outbound?: boolean;
  /** gRPC message names and types (`--proto`); schema-less field numbers without. */
  protos?: MessageSchema | undefined;
}

/** Differences from answer `a` (reference) to answer `b`. */
export function compareAnswers(a: Answer, b: Answer, opts: CompareOptions): Difference[] {
  const out: Difference[] = [];
  if (b.error !== undefined || b.status === undefined) {
    if (a.error === undefined && a.status !== undefined) {
      out.push({
        target: 'response',
        path: 'response',
        kind: 'no-response',
        rating: 'breaking',
        recorded: a.status,
        candidate: b.error ?? 'no response',
        message: `no answer (${b.error ?? 'no response'}); recorded status ${a.status}`,
      });
    }
    return out;
  }
  if (a.status === undefined) return out;
  const classChanged = Math.floor(a.status / 100) !== Math.floor(b.status / 100);
  if (a.status !== b.status) {
    out.push({
      target: 'status',
      path: 'status',
      kind: classChanged ? 'status-class' : 'changed-status',
      rating: classChanged ? 'breaking' : 'warning',
      recorded: a.status,
      candidate: b.status,
      message: `status ${a.status} → ${b.status}`,
    });
  }
  if (!classChanged && a.grpc && b.grpc) {
    // a trailers-only answer carries its status in the headers: judged once, as grpc-status
    const plain = ([n]: [string, string]): boolean => !/^grpc-(status|message|status-details-bin)$/i.test(n);
    out.push(...compareHeaders(a.headers.filter(plain), b.headers.filter(plain)));
    if (a.body.truncated || b.body.truncated) {
      // messages cut by capture are not compared; the status still is
      const sa = { ...a.grpc, messages: [] };
      out.push(...compareGrpc(sa, { ...b.grpc, messages: [] }, opts.protos));
    } else out.push(...compareGrpc(a.grpc, b.grpc, opts.protos));
  } else if (!classChanged) {
    out.push(...compareHeaders(a.headers, b.headers));
    const body = bodyDiffs(a.body, b.body);
    out.push(...body);
    if (opts.schemas && b.body.kind === 'json') {
      const seen = new Set(body.map((d) => `${d.kind} ${d.path}`));
      for (const s of opts.schemas.check(opts.route, b.status, b.body.value)) {
        if (s.kind === 'schema-type' && seen.has(`changed-type ${s.path}`)) continue;
        if (s.kind === 'schema-required' && seen.has(`missing-field ${s.path}`)) continue;
        out.push(s);
      }
    }
  }
  if (opts.outbound !== false) out.push(...compareCalls(a.outbound, b.outbound));
  return out;
}
