/**
 * The viewer's query language: a line of terms that parses into the FilterSpec that
 * `retap snapshot filter` uses (snapshots/filter.ts), so a view and a saved snapshot select the
 * same exchanges. Documented in docs/viewer.md.
 *
 *   dir:inbound status:5xx,404 method:POST url:/orders/* service:orders proto:grpc
 *   host:inventory* peer:10.0.0.* header:x-user=ann json:user.id=42 from:-5m to:+30s
 *   "out of stock" timeout
 *
 * Terms are separated by spaces; `key:value` with values separated by commas (alternatives);
 * a value or a word with spaces is quoted with "…" (\" and \\ inside). Words without a key are
 * text terms, each of which must occur somewhere in the exchange.
 */
import { type RetapError, usageError } from '../core/errors.js';
import { compileFilterParts, type FilterSpec, parseJsonPath, parseTimeUs } from '../snapshots/index.js';

export interface Term {
  /** Canonical key (`status`, `text`…). */
  key: string;
  values: string[];
  /** The term as written. */
  raw: string;
  start: number;
  end: number;
}

export interface ParsedQuery {
  spec: FilterSpec;
  terms: Term[];
  /** Canonical text of the query (terms in the order given, normalised keys). */
  canonical: string;
}

const KEYS: Record<string, string> = {
  dir: 'dir',
  direction: 'dir',
  status: 'status',
  method: 'method',
  url: 'url',
  route: 'url',
  path: 'url',
  host: 'host',
  service: 'service',
  svc: 'service',
  proto: 'proto',
  protocol: 'proto',
  peer: 'peer',
  header: 'header',
  h: 'header',
  json: 'json',
  field: 'json',
  from: 'from',
  to: 'to',
  text: 'text',
};

function fail(q: string, at: number, message: string, hint?: string): RetapError {
  return usageError(`query: ${message} (at column ${at + 1}: ${JSON.stringify(q.slice(at, at + 24))})`, hint ?? 'See docs/viewer.md for the query language.');
}

interface Lexeme {
  key?: string;
  values: string[];
  start: number;
  end: number;
}

function readValue(q: string, i: number): { value: string; next: number } {
  if (q[i] === '"') {
    let out = '';
    let j = i + 1;
    for (; j < q.length; j++) {
      const c = q[j]!;
      if (c === '\\' && j + 1 < q.length) {
        out += q[++j];
      } else if (c === '"') {
        return { value: out, next: j + 1 };
      } else out += c;
    }
    throw fail(q, i, 'a quoted value is not closed', 'Close it with ".');
  }
  let j = i;
  while (j < q.length && !/[\s,]/.test(q[j]!)) {
    if (q[j] === '"') throw fail(q, j, 'a quote inside a word', 'Quote the whole value: key:"a b".');
    j++;
  }
  return { value: q.slice(i, j), next: j };
}

function lex(q: string): Lexeme[] {
  const out: Lexeme[] = [];
  let i = 0;
  while (i < q.length) {
    if (/\s/.test(q[i]!)) {
      i++;
      continue;
    }
    const start = i;
    const keyMatch = /^([A-Za-z]+):/.exec(q.slice(i));
    if (keyMatch && KEYS[keyMatch[1]!.toLowerCase()] !== undefined) {
      const key = KEYS[keyMatch[1]!.toLowerCase()]!;
      i += keyMatch[0].length;
      const values: string[] = [];
      for (;;) {
        if (i >= q.length || /\s/.test(q[i]!)) throw fail(q, start, `${key}: needs a value`);
        const v = readValue(q, i);
        values.push(v.value);
        i = v.next;
        if (q[i] === ',') {
          i++;
          continue;
        }
        break;
      }
      if (i < q.length && !/\s/.test(q[i]!)) throw fail(q, i, 'expected a space after a term');
      out.push({ key, values, start, end: i });
    } else {
      const v = readValue(q, i);
      i = v.next;
      if (q[i] === ',') {
        // a comma in a bare word is part of it
        let j = i;
        while (j < q.length && !/\s/.test(q[j]!)) j++;
        out.push({ values: [q.slice(start, j)], start, end: j });
        i = j;
        continue;
      }
      out.push({ values: [v.value], start, end: i });
    }
  }
  return out;
}

/** Parses a query; `baseUs` anchors relative times (`from:+30s`), usually the first exchange. */
export function parseQuery(q: string, baseUs?: number): ParsedQuery {
  const spec: FilterSpec = {};
  const terms: Term[] = [];
  const add = (k: keyof FilterSpec, vals: string[]) => {
    const cur = (spec[k] as string[] | undefined) ?? [];
    (spec as Record<string, unknown>)[k] = [...cur, ...vals];
  };
  for (const l of lex(q)) {
    const raw = q.slice(l.start, l.end);
    const key = l.key ?? 'text';
    const vals = l.values.filter((v) => v !== '');
    if (vals.length === 0) throw fail(q, l.start, `${key}: needs a value`);
    switch (key) {
      case 'dir': {
        const d = vals.map((v) => (v === 'in' ? 'inbound' : v === 'out' ? 'outbound' : v.toLowerCase()));
        for (const x of d) if (x !== 'inbound' && x !== 'outbound') throw fail(q, l.start, `dir: '${x}' is not inbound or outbound`);
        const set = new Set(d);
        if (set.size === 1) {
          const only = d[0] as 'inbound' | 'outbound';
          if (spec.direction && spec.direction !== only) throw fail(q, l.start, 'dir: given twice with different values');
          spec.direction = only;
        }
        break;
      }
      case 'status':
        add('statuses', vals);
        break;
      case 'method':
        add('methods', vals);
        break;
      case 'url':
        add('routes', vals);
        break;
      case 'host':
        add('hosts', vals);
        break;
      case 'service':
        add('services', vals);
        break;
      case 'proto':
        add('protocols', vals);
        break;
      case 'peer':
        add('peers', vals);
        break;
      case 'header':
        add('headers', vals);
        break;
      case 'json':
        for (const v of vals) parseJsonPath(v.split(/[=~]/)[0]!);
        add('json', vals);
        break;
      case 'from':
      case 'to': {
        if (vals.length !== 1) throw fail(q, l.start, `${key}: takes one time`);
        let us: number;
        try {
          us = parseTimeUs(vals[0]!, `${key}:`, baseUs);
        } catch (e) {
          throw fail(q, l.start, (e as Error).message, (e as RetapError).hint);
        }
        if (key === 'from') spec.fromUs = us;
        else spec.toUs = us;
        break;
      }
      default:
        add('text', vals);
    }
    terms.push({ key, values: vals, raw, start: l.start, end: l.end });
  }
  try {
    compileFilterParts(spec); // bad statuses and regular expressions fail here, with the query
  } catch (e) {
    throw usageError(`query: ${(e as Error).message}`, (e as RetapError).hint ?? 'See docs/viewer.md for the query language.');
  }
  return { spec, terms, canonical: terms.map((t) => formatTerm(t.key, t.values)).join(' ') };
}

function quoteValue(v: string): string {
  return v === '' || /[\s,"\\]/.test(v) ? `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"` : v;
}

/** One term in the language: `status:5xx,404`, `"two words"`. */
export function formatTerm(key: string, values: string[]): string {
  if (key === 'text') return values.map(quoteValue).join(' ');
  return `${key}:${values.map(quoteValue).join(',')}`;
}

/** A FilterSpec written in the query language (the inverse of parseQuery, up to order). */
export function formatSpec(spec: FilterSpec): string {
  const parts: string[] = [];
  const list = (key: string, v: string[] | undefined) => {
    if (v?.length) parts.push(formatTerm(key, v));
  };
  if (spec.direction) parts.push(`dir:${spec.direction}`);
  list('method', spec.methods);
  list('status', spec.statuses);
  list('url', spec.routes);
  list('host', spec.hosts);
  list('service', spec.services);
  list('proto', spec.protocols);
  list('peer', spec.peers);
  for (const h of spec.headers ?? []) parts.push(formatTerm('header', [h]));
  for (const j of spec.json ?? []) parts.push(formatTerm('json', [j]));
  if (spec.fromUs !== undefined) parts.push(`from:${new Date(spec.fromUs / 1000).toISOString()}`);
  if (spec.toUs !== undefined) parts.push(`to:${new Date(spec.toUs / 1000).toISOString()}`);
  const t = spec.text;
  for (const x of t === undefined ? [] : Array.isArray(t) ? t : [t]) parts.push(formatTerm('text', [x]));
  return parts.join(' ');
}
