/**
 * A request or response opened for reading and writing values at locations: header, cookie,
 * query, path segment, JSON path, form field, regex group in the body, or the whole body.
 * Reads return every value at the location; writes map each value through a function and count
 * the changes. Bodies are read in their content-decoded form; a changed body is stored plain
 * (Content-Encoding dropped) and Content-Length follows.
 */
import type { Body, HeaderList, Request, Response } from '../../core/exchange.js';
import { encodeRaw, grpcFrame, grpcFrames, type RawField, roundTrips } from '../../core/protobuf.js';
import { getAll, type PathPart, updateAll } from './jsonpath.js';

export type LocationKind = 'header' | 'cookie' | 'query' | 'path' | 'jsonpath' | 'form' | 'regex' | 'body' | 'protobuf';

export interface Location {
  kind: LocationKind;
  name?: string;
  segment?: number;
  path?: PathPart[];
  regex?: RegExp;
  group?: number | string;
}

export type Update = (old: string) => string | undefined;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function textOf(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

function decode(s: string, plus: boolean): string {
  const t = plus ? s.replace(/\+/g, ' ') : s;
  try {
    return decodeURIComponent(t);
  } catch {
    return t;
  }
}

/** Splits `a=1&b=2` keeping raw pairs; values decoded on read, re-encoded only when changed. */
function mapPairs(text: string, name: string | undefined, plus: boolean, f: Update | undefined, out: string[]): { text: string; changed: number } {
  if (text === '') return { text, changed: 0 };
  let changed = 0;
  const pairs = text.split('&').map((pair) => {
    const eq = pair.indexOf('=');
    const rawName = eq === -1 ? pair : pair.slice(0, eq);
    if (name !== undefined && decode(rawName, plus) !== name) return pair;
    if (eq === -1) return pair;
    const value = decode(pair.slice(eq + 1), plus);
    out.push(value);
    if (!f) return pair;
    const next = f(value);
    if (next === undefined || next === value) return pair;
    changed++;
    const enc = encodeURIComponent(next);
    return `${rawName}=${plus ? enc.replace(/%20/g, '+') : enc}`;
  });
  return { text: pairs.join('&'), changed };
}

function cookiePairs(header: string): Array<[string, string]> {
  return header.split(';').map((p) => {
    const eq = p.indexOf('=');
    return eq === -1 ? [p.trim(), ''] : [p.slice(0, eq).trim(), p.slice(eq + 1).trim()];
  });
}

export interface MessageView {
  readonly side: 'request' | 'response';
  headers: HeaderList;
  /** Request target (path and query); '' for responses. */
  target: string;
  /** Every value at the location. */
  read(loc: Location): string[];
  /** Maps every value at the location; returns how many changed. */
  write(loc: Location, f: Update): number;
  /** Sets the location to `value`, creating it where that makes sense (header, cookie, query, form). */
  set(loc: Location, value: string): number;
  bodyText(): string | undefined;
  toRequest(base: Request): Request;
  toResponse(base: Response): Response;
}

export function openMessage(side: 'request' | 'response', headers: HeaderList, body: Body, target = ''): MessageView {
  let hdrs: HeaderList = headers.map(([n, v]) => [n, v]);
  let tgt = target;
  const raw = body.decoded ?? body.data;
  let text: string | undefined | null = null; // null: not decoded yet
  let json: unknown;
  let jsonState: 'unparsed' | 'ok' | 'none' = 'unparsed';
  let bodyChanged = false;
  /** A gRPC body whose protobuf fields were rewritten (kept as bytes: it is not text). */
  let protoBody: Uint8Array | undefined;

  const getText = (): string | undefined => {
    if (text === null) text = raw.length === 0 ? '' : textOf(raw);
    if (jsonState === 'ok' && bodyChanged) return JSON.stringify(json);
    return text;
  };
  const getJson = (): unknown => {
    if (jsonState === 'unparsed') {
      const t = getText();
      jsonState = 'none';
      if (t !== undefined && t.length > 0 && (t.trimStart()[0] === '{' || t.trimStart()[0] === '[')) {
        try {
          json = JSON.parse(t);
          jsonState = 'ok';
        } catch {
          /* not JSON */
        }
      }
    }
    return jsonState === 'ok' ? json : undefined;
  };
  const setText = (t: string): void => {
    text = t;
    jsonState = 'unparsed';
    bodyChanged = true;
  };

  const headerIdx = (name: string): number[] => {
    const lower = name.toLowerCase();
    const out: number[] = [];
    hdrs.forEach(([n], i) => {
      if (n.toLowerCase() === lower) out.push(i);
    });
    return out;
  };

  const access = (loc: Location, f: Update | undefined): { values: string[]; changed: number } => {
    const values: string[] = [];
    let changed = 0;
    const apply = (v: string): string => {
      values.push(v);
      if (!f) return v;
      const n = f(v);
      if (n === undefined || n === v) return v;
      changed++;
      return n;
    };
    switch (loc.kind) {
      case 'header':
        for (const i of headerIdx(loc.name ?? '')) hdrs[i]![1] = apply(hdrs[i]![1]);
        break;
      case 'cookie': {
        if (side === 'request') {
          for (const i of headerIdx('cookie')) {
            const pairs = cookiePairs(hdrs[i]![1]);
            let touched = false;
            for (const p of pairs) {
              if (p[0] !== loc.name) continue;
              const n = apply(p[1]);
              if (n !== p[1]) touched = true;
              p[1] = n;
            }
            if (touched) hdrs[i]![1] = pairs.map(([k, v]) => `${k}=${v}`).join('; ');
          }
        } else {
          for (const i of headerIdx('set-cookie')) {
            const h = hdrs[i]![1];
            const semi = h.indexOf(';');
            const first = semi === -1 ? h : h.slice(0, semi);
            const eq = first.indexOf('=');
            if (eq === -1 || first.slice(0, eq).trim() !== loc.name) continue;
            const v = first.slice(eq + 1).trim();
            const n = apply(v);
            if (n !== v) hdrs[i]![1] = `${first.slice(0, eq).trim()}=${n}${semi === -1 ? '' : h.slice(semi)}`;
          }
        }
        break;
      }
      case 'query': {
        const q = tgt.indexOf('?');
        if (q === -1) break;
        const hash = tgt.indexOf('#', q);
        const end = hash === -1 ? tgt.length : hash;
        const r = mapPairs(tgt.slice(q + 1, end), loc.name, false, f ? apply : undefined, f ? [] : values);
        if (r.changed) tgt = `${tgt.slice(0, q + 1)}${r.text}${tgt.slice(end)}`;
        break;
      }
      case 'path': {
        const q = tgt.search(/[?#]/);
        const path = q === -1 ? tgt : tgt.slice(0, q);
        const segs = path.split('/');
        const idx = (loc.segment ?? 0) + 1; // segs[0] is '' before the leading '/'
        if (!path.startsWith('/') || idx >= segs.length) break;
        const old = decode(segs[idx]!, false);
        const n = apply(old);
        if (n !== old) {
          segs[idx] = encodeURIComponent(n);
          tgt = segs.join('/') + (q === -1 ? '' : tgt.slice(q));
        }
        break;
      }
      case 'jsonpath': {
        const root = getJson();
        if (root === undefined || !loc.path) break;
        const leaf = (old: unknown): unknown => {
          if (typeof old === 'string') return apply(old);
          if (typeof old === 'number' || typeof old === 'boolean') {
            const s = String(old);
            const n = apply(s);
            if (n === s) return old;
            return typeof old === 'number' && /^-?\d+(\.\d+)?$/.test(n) && String(Number(n)) === n ? Number(n) : n;
          }
          return undefined;
        };
        if (loc.path.length === 0) break;
        if (f) {
          if (updateAll(root, loc.path, leaf) > 0) bodyChanged = true;
        } else for (const v of getAll(root, loc.path)) leaf(v);
        break;
      }
      case 'protobuf': {
        const next = protobufAccess(protoBody ?? raw, loc.name ?? '', apply, f !== undefined);
        if (next) protoBody = next;
        break;
      }
      case 'form': {
        const t = getText();
        if (t === undefined) break;
        const r = mapPairs(t, loc.name, true, f ? apply : undefined, f ? [] : values);
        if (r.changed) setText(r.text);
        break;
      }
      case 'regex': {
        const t = getText();
        if (t === undefined || !loc.regex) break;
        const re = new RegExp(loc.regex.source, loc.regex.flags.replace('g', '').replace('d', '') + 'gd');
        let out = '';
        let last = 0;
        let touched = false;
        for (const m of t.matchAll(re)) {
          const g = loc.group ?? (m.length > 1 ? 1 : 0);
          const span = typeof g === 'number' ? m.indices?.[g] : m.indices?.groups?.[g];
          const v = typeof g === 'number' ? m[g] : m.groups?.[g];
          if (!span || v === undefined) continue;
          const n = apply(v);
          if (n !== v) {
            out += t.slice(last, span[0]) + n;
            last = span[1];
            touched = true;
          }
        }
        if (touched) setText(out + t.slice(last));
        break;
      }
      case 'body': {
        const t = getText();
        if (t === undefined || t === '') break;
        const n = apply(t);
        if (n !== t) setText(n);
        break;
      }
    }
    return { values, changed };
  };

  const view: MessageView = {
    side,
    get headers() {
      return hdrs;
    },
    set headers(h: HeaderList) {
      hdrs = h;
    },
    get target() {
      return tgt;
    },
    set target(t: string) {
      tgt = t;
    },
    read: (loc) => access(loc, undefined).values,
    write: (loc, f) => access(loc, f).changed,
    set(loc, value) {
      const n = access(loc, () => value).values.length;
      if (n > 0) return 1;
      // Nothing there yet: create it where the location can be created.
      switch (loc.kind) {
        case 'header':
          hdrs.push([loc.name ?? '', value]);
          return 1;
        case 'cookie':
          if (side === 'request') {
            const i = headerIdx('cookie')[0];
            if (i === undefined) hdrs.push(['cookie', `${loc.name}=${value}`]);
            else hdrs[i]![1] = `${hdrs[i]![1]}; ${loc.name}=${value}`;
          } else hdrs.push(['set-cookie', `${loc.name}=${value}`]);
          return 1;
        case 'query': {
          const hash = tgt.indexOf('#');
          const [head, tail] = hash === -1 ? [tgt, ''] : [tgt.slice(0, hash), tgt.slice(hash)];
          tgt = `${head}${head.includes('?') ? '&' : '?'}${encodeURIComponent(loc.name ?? '')}=${encodeURIComponent(value)}${tail}`;
          return 1;
        }
        case 'form': {
          const t = getText() ?? '';
          setText(`${t}${t === '' ? '' : '&'}${encodeURIComponent(loc.name ?? '')}=${encodeURIComponent(value)}`);
          return 1;
        }
        case 'body':
          setText(value);
          return 1;
        default:
          return 0;
      }
    },
    bodyText: getText,
    toRequest(base) {
      return { ...base, target: tgt, headers: hdrs, body: finalBody(base.body) };
    },
    toResponse(base) {
      return { ...base, headers: hdrs, body: finalBody(base.body) };
    },
  };

  const finalBody = (b: Body): Body => {
    if (protoBody && !bodyChanged) {
      for (const i of headerIdx('content-length')) hdrs[i]![1] = String(protoBody.length);
      return { data: protoBody, size: protoBody.length, truncated: false };
    }
    if (!bodyChanged) return b;
    const t = getText() ?? '';
    const data = new Uint8Array(Buffer.from(t, 'utf8'));
    if (b.decoded !== undefined) hdrs = hdrs.filter(([n]) => n.toLowerCase() !== 'content-encoding');
    for (const i of headerIdx('content-length')) hdrs[i]![1] = String(data.length);
    return { data, size: data.length, truncated: false };
  };

  return view;
}

/** `#2.3` → [2, 3]; undefined when it is not a field-number path. */
export function protobufPath(text: string): number[] | undefined {
  if (!/^#\d+(\.\d+)*$/.test(text)) return undefined;
  return text.slice(1).split('.').map(Number);
}

/**
 * Reads (and, when `write`, rewrites) the protobuf field at `path` (`#1`, `#2.3`) in every message
 * of a gRPC body: text fields and varints, every occurrence. Only messages that re-encode to their
 * own bytes are touched, and compressed ones not at all, so nothing else in the body changes.
 * Returns the new body when a value changed.
 */
function protobufAccess(body: Uint8Array, path: string, apply: (v: string) => string, write: boolean): Uint8Array | undefined {
  const nums = protobufPath(path);
  if (!nums) return undefined;
  const { frames, rest } = grpcFrames(body);
  if (frames.length === 0 || rest !== 0) return undefined;
  let changed = false;
  const walk = (fields: RawField[], depth: number): boolean => {
    let touched = false;
    for (const f of fields) {
      if (f.field !== nums[depth]) continue;
      if (depth < nums.length - 1) {
        if ((f.wire === 'len' || f.wire === 'group') && 'message' in f && walk(f.message, depth + 1)) touched = true;
        continue;
      }
      if (f.wire === 'len' && 'string' in f) {
        const n = apply(f.string);
        if (n !== f.string) {
          (f as { string: string }).string = n;
          touched = true;
        }
      } else if (f.wire === 'varint') {
        const old = String(f.value);
        const n = apply(old);
        if (n !== old && /^\d+$/.test(n)) {
          (f as { value: string | number }).value = n;
          touched = true;
        }
      }
    }
    return touched;
  };
  const parts = frames.map((fr) => {
    const whole = body.subarray(fr.offset, fr.offset + 5 + fr.bytes.length);
    if (fr.compressed) return whole;
    const fields = roundTrips(fr.bytes);
    if (!fields || !walk(fields, 0) || !write) return whole;
    changed = true;
    return grpcFrame(encodeRaw(fields));
  });
  return changed ? Uint8Array.from(Buffer.concat(parts)) : undefined;
}
