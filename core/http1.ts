/**
 * Parsing of an HTTP/1.x start line and header section (RFC 9112 §3–§5) from one latin1 string.
 * Bytes map 1:1 to latin1 code units, so names, values and targets round-trip exactly.
 */
import type { HeaderList } from './exchange.js';

export interface Head {
  /** Request: method, target. Response: status, reason. */
  method: string;
  target: string;
  status: number;
  reason: string;
  version: string;
  headers: HeaderList;
  /** Framing facts gathered while reading the headers. */
  contentLength: number; // -1 none, -2 invalid
  chunked: boolean;
  /** Transfer-Encoding present but not ending in chunked. */
  otherTransferEncoding: boolean;
  connectionClose: boolean;
  connectionKeepAlive: boolean;
  connectionUpgrade: boolean;
  upgrade: string | undefined;
  contentEncoding: string | undefined;
  /** Header lines continued with obs-fold (joined with one space). */
  obsFold: boolean;
}

function isTokenChar(c: number): boolean {
  // tchar: ALPHA / DIGIT / "!#$%&'*+-.^_`|~"
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x21 ||
    (c >= 0x23 && c <= 0x27) ||
    c === 0x2a ||
    c === 0x2b ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5e ||
    c === 0x5f ||
    c === 0x60 ||
    c === 0x7c ||
    c === 0x7e
  );
}

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTokenChar(s.charCodeAt(i))) return false;
  return true;
}

function isVersion(v: string): boolean {
  return (
    v.length === 8 && v.startsWith('HTTP/') && v.charCodeAt(6) === 0x2e && isDigit(v, 5) && isDigit(v, 7)
  );
}

function isDigit(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 0x30 && c <= 0x39;
}

/** `GET /x HTTP/1.1` → [method, target, version] or undefined. */
export function parseRequestLine(line: string): [string, string, string] | undefined {
  const a = line.indexOf(' ');
  const b = line.lastIndexOf(' ');
  if (a <= 0 || b <= a + 1) return undefined;
  const method = line.slice(0, a);
  const target = line.slice(a + 1, b);
  const version = line.slice(b + 1);
  if (!isVersion(version) || !isToken(method) || target.includes(' ')) return undefined;
  return [method, target, version];
}

/** `HTTP/1.1 200 OK` → [version, status, reason] or undefined. */
export function parseStatusLine(line: string): [string, number, string] | undefined {
  if (line.length < 12 || line.charCodeAt(8) !== 0x20) return undefined;
  const version = line.slice(0, 8);
  if (!isVersion(version) || !isDigit(line, 9) || !isDigit(line, 10) || !isDigit(line, 11)) return undefined;
  if (line.length > 12 && line.charCodeAt(12) !== 0x20) return undefined;
  const status =
    (line.charCodeAt(9) - 48) * 100 + (line.charCodeAt(10) - 48) * 10 + (line.charCodeAt(11) - 48);
  return [version, status, line.length > 13 ? line.slice(13) : ''];
}

/** `s` without surrounding optional whitespace (SP and HTAB only, RFC 9110 §5.5). */
export function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** Whether a comma-separated header value lists `token` (case-insensitively). */
export function hasToken(list: string, token: string): boolean {
  if (list.indexOf(',') === -1) return trimOws(list).toLowerCase() === token;
  for (const part of list.split(',')) if (trimOws(part).toLowerCase() === token) return true;
  return false;
}

/** Parses `1234` or `5, 5` (repeated identical values); -2 when invalid. */
export function parseContentLength(v: string, previous: number): number {
  if (previous === -1 && v.length > 0 && v.length <= 15) {
    let x = 0;
    let i = 0;
    for (; i < v.length; i++) {
      const c = v.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      x = x * 10 + (c - 0x30);
    }
    if (i === v.length) return x;
  }
  let n = -1;
  for (const part of v.split(',')) {
    const p = trimOws(part);
    if (p.length === 0 || p.length > 15) return -2;
    for (let i = 0; i < p.length; i++) if (!isDigit(p, i)) return -2;
    const x = Number(p);
    if (n !== -1 && x !== n) return -2;
    n = x;
  }
  if (previous >= 0 && previous !== n) return -2;
  return n;
}

/**
 * Reads header field lines of `text` from offset `from` (lines end in `\n`, an optional `\r`
 * before it is dropped) into `out`. Returns false when a line is not a header field (no colon,
 * empty name, or whitespace before the colon). obs-fold lines are joined with one space.
 */
export function parseHeaderLines(
  text: string,
  from: number,
  head: { obsFold: boolean },
  out: HeaderList,
): boolean {
  const len = text.length;
  let at = from;
  while (at < len) {
    let nl = text.indexOf('\n', at);
    if (nl === -1) nl = len;
    const end = nl > at && text.charCodeAt(nl - 1) === 0x0d ? nl - 1 : nl;
    if (end > at) {
      const c0 = text.charCodeAt(at);
      if (c0 === 0x20 || c0 === 0x09) {
        // obs-fold (RFC 9112 §5.2): replace with a space and append to the previous field.
        const last = out[out.length - 1];
        if (!last) return false;
        const more = trimOws(text.slice(at, end));
        last[1] = last[1].length === 0 ? more : more.length === 0 ? last[1] : `${last[1]} ${more}`;
        head.obsFold = true;
      } else {
        const colon = text.indexOf(':', at);
        if (colon <= at || colon >= end) return false;
        const lastName = text.charCodeAt(colon - 1);
        if (lastName === 0x20 || lastName === 0x09) return false; // RFC 9112 §5.1
        let vs = colon + 1;
        let ve = end;
        while (vs < ve && (text.charCodeAt(vs) === 0x20 || text.charCodeAt(vs) === 0x09)) vs++;
        while (ve > vs && (text.charCodeAt(ve - 1) === 0x20 || text.charCodeAt(ve - 1) === 0x09)) ve--;
        out.push([text.slice(at, colon), text.slice(vs, ve)]);
      }
    }
    at = nl + 1;
  }
  return true;
}

/** What a Transfer-Encoding value ends in: chunked, another coding, or nothing (empty list). */
export function finalCoding(value: string): 'chunked' | 'other' | '' {
  const codings = value.toLowerCase().split(',');
  const last = trimOws(codings[codings.length - 1] ?? '');
  return last === 'chunked' ? 'chunked' : last === '' ? '' : 'other';
}

/** Fills the framing facts of `head` from its headers (after obs-fold joining). */
function scanFraming(head: Head): void {
  for (const [name, value] of head.headers) {
    switch (name.length) {
      case 14:
        if (name.toLowerCase() === 'content-length')
          head.contentLength = parseContentLength(value, head.contentLength);
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') {
          const coding = finalCoding(value);
          if (coding === 'chunked') {
            head.chunked = true;
            head.otherTransferEncoding = false;
          } else if (coding === 'other') {
            head.chunked = false;
            head.otherTransferEncoding = true;
          }
        }
        break;
      case 10:
        if (name.toLowerCase() === 'connection') {
          if (hasToken(value, 'close')) head.connectionClose = true;
          if (hasToken(value, 'keep-alive')) head.connectionKeepAlive = true;
          if (hasToken(value, 'upgrade')) head.connectionUpgrade = true;
        }
        break;
      case 7:
        if (name.toLowerCase() === 'upgrade') head.upgrade = value;
        break;
      case 16:
        if (name.toLowerCase() === 'content-encoding') head.contentEncoding = value;
        break;
    }
  }
}

/**
 * Parses a whole head (start line + fields, without the final empty line). `kind` says which
 * start line to expect. Returns undefined when it is not a valid HTTP/1.x head.
 */
export function parseHead(text: string, kind: 'request' | 'response'): Head | undefined {
  let nl = text.indexOf('\n');
  if (nl === -1) nl = text.length;
  const first = text.slice(0, nl > 0 && text.charCodeAt(nl - 1) === 0x0d ? nl - 1 : nl);
  const head: Head = {
    method: '',
    target: '',
    status: 0,
    reason: '',
    version: '',
    headers: [],
    contentLength: -1,
    chunked: false,
    otherTransferEncoding: false,
    connectionClose: false,
    connectionKeepAlive: false,
    connectionUpgrade: false,
    upgrade: undefined,
    contentEncoding: undefined,
    obsFold: false,
  };
  if (kind === 'request') {
    const r = parseRequestLine(first);
    if (!r) return undefined;
    [head.method, head.target, head.version] = r;
  } else {
    const r = parseStatusLine(first);
    if (!r) return undefined;
    [head.version, head.status, head.reason] = r;
  }
  if (!parseHeaderLines(text, nl + 1, head, head.headers)) return undefined;
  scanFraming(head);
  return head;
}

/** Parses trailer field lines (after a last chunk). Invalid lines are skipped. */
export function parseTrailers(text: string): HeaderList {
  const out: HeaderList = [];
  const scratch = { obsFold: false };
  let at = 0;
  while (at < text.length) {
    let nl = text.indexOf('\n', at);
    if (nl === -1) nl = text.length;
    parseHeaderLines(text.slice(at, nl + 1), 0, scratch, out);
    at = nl + 1;
  }
  return out;
}
