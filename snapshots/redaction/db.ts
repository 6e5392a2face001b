/**
 * Credential positions inside database calls, for the value-keyed redactor (snapshots/redaction.ts).
 *
 * The decoders already drop what the wire protocols carry for authentication (PostgreSQL password
 * and SASL messages, MySQL auth responses, Redis AUTH/HELLO passwords). What is left are secrets
 * that ride inside queries and commands:
 *   - SQL that sets a password: `PASSWORD '…'` (CREATE/ALTER ROLE|USER), MySQL `IDENTIFIED [WITH
 *     plugin] BY|AS '…'` and `SET PASSWORD … = '…'`;
 *   - SQL values bound to a column whose name is a credential (`token = $1`, `password = ?`,
 *     `WHERE api_key = '…'`, `INSERT INTO sessions (user_id, token) VALUES ($1, $2)`), literals
 *     and parameters alike;
 *   - Redis: `CONFIG SET requirepass|masterauth …`, `ACL SETUSER … >password`, `MIGRATE … AUTH|AUTH2`,
 *     a value stored under a key or hash field named like a credential (`SETEX reset_token:7 900 …`,
 *     `HSET user:7 api_key …`), and a key that holds the secret itself (`session:<token>`).
 * Each position is handed to `secret(value, rule, location)` — the redactor's own: it remembers the
 * value (learn) or gives its placeholder (apply) — and the call, its SQL text and its Redis target
 * are rebuilt with what it returned. So a session token first seen as a Redis key and later presented
 * in a request gets one placeholder everywhere, and a short password is replaced where it stands.
 */
import { type DbCall, type DbValue, redisCommandLine } from '../../core/db.js';
import { secretField } from './rules.js';

/** The redactor's callback: the value unchanged while learning, its placeholder when applying. */
export type SecretFn = (value: string, rule: string, location: string) => string;

interface Tok {
  /** w word, i quoted identifier, s string literal, p parameter ($n or ?), o punctuation */
  t: 'w' | 'i' | 's' | 'p' | 'o';
  /** word upper-cased, identifier unquoted, literal content (escapes undone), parameter index */
  v: string;
  /** Offsets of the literal's content in the text (string literals). */
  s: number;
  e: number;
  /** Parameter: 0-based index into params. */
  n?: number;
}

/** A light SQL lexer: enough to find literals, parameters and the names before them. */
function lex(text: string, mysql: boolean): Tok[] {
  const out: Tok[] = [];
  const n = text.length;
  let q = 0; // `?` parameters seen
  let i = 0;
  while (i < n && out.length < 20_000) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    if (c === '-' && text[i + 1] === '-') {
      const nl = text.indexOf('\n', i);
      i = nl === -1 ? n : nl + 1;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end === -1 ? n : end + 2;
      continue;
    }
    if (c === "'" || (mysql && c === '"')) {
      // string literal ('' doubles the quote; MySQL also takes backslash escapes and "…")
      const start = i + 1;
      let j = start;
      let v = '';
      for (; j < n; j++) {
        const d = text[j]!;
        if (mysql && d === '\\' && j + 1 < n) {
          v += text[++j];
          continue;
        }
        if (d === c) {
          if (text[j + 1] === c) {
            v += c;
            j++;
            continue;
          }
          break;
        }
        v += d;
      }
      out.push({ t: 's', v, s: start, e: j });
      i = j + 1;
      continue;
    }
    if (c === '"' || c === '`') {
      const end = text.indexOf(c, i + 1);
      const j = end === -1 ? n : end;
      out.push({ t: 'i', v: text.slice(i + 1, j), s: i + 1, e: j });
      i = j + 1;
      continue;
    }
    if (c === '$' && /[0-9]/.test(text[i + 1] ?? '')) {
      let j = i + 1;
      while (j < n && /[0-9]/.test(text[j]!)) j++;
      out.push({ t: 'p', v: text.slice(i, j), s: i, e: j, n: Number(text.slice(i + 1, j)) - 1 });
      i = j;
      continue;
    }
    if (c === '?') {
      out.push({ t: 'p', v: '?', s: i, e: i + 1, n: q++ });
      i++;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$]/.test(text[j]!)) j++;
      // E'…' and N'…' literals: the prefix is not a word before them
      if (j === i + 1 && text[j] === "'" && /[EeNn]/.test(c)) {
        i = j;
        continue;
      }
      out.push({ t: 'w', v: text.slice(i, j).toUpperCase(), s: i, e: j });
      i = j;
      continue;
    }
    out.push({ t: 'o', v: c, s: i, e: i + 1 });
    i++;
  }
  return out;
}

/** A name token (a word keeps its case in `raw`). */
function nameOf(t: Tok | undefined, text: string): string | undefined {
  if (!t) return undefined;
  if (t.t === 'i') return t.v;
  if (t.t === 'w') return text.slice(t.s, t.e);
  return undefined;
}

/** Positions of secret values in SQL: literals (by token) and parameters (by index). */
function sqlSpots(text: string, mysql: boolean): Array<{ tok: Tok; rule: string; column?: string }> {
  const toks = lex(text, mysql);
  const spots: Array<{ tok: Tok; rule: string; column?: string }> = [];
  const value = (t: Tok | undefined): t is Tok => t !== undefined && (t.t === 's' || t.t === 'p');
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k]!;
    if (t.t === 'w' && t.v === 'PASSWORD') {
      // PASSWORD 'x' | PASSWORD = 'x' | PASSWORD = PASSWORD('x') | PASSWORD($1)
      let j = k + 1;
      while (
        j < toks.length &&
        j <= k + 4 &&
        (toks[j]!.v === '=' || toks[j]!.v === '(' || toks[j]!.v === 'PASSWORD')
      )
        j++;
      if (value(toks[j])) spots.push({ tok: toks[j]!, rule: 'db-password' });
      continue;
    }
    if (t.t === 'w' && t.v === 'IDENTIFIED') {
      // IDENTIFIED BY 'x' | IDENTIFIED WITH plugin BY|AS 'x'
      let j = k + 1;
      if (toks[j]?.v === 'WITH') j += 2;
      if (toks[j]?.v === 'BY' || toks[j]?.v === 'AS') j++;
      if (toks[j]?.v === 'PASSWORD') j++;
      if (value(toks[j])) spots.push({ tok: toks[j]!, rule: 'db-password' });
      continue;
    }
    if (t.v === '=' && t.t === 'o') {
      // name = value, value = name (the last part of a qualified name)
      const before = toks[k - 1];
      const after = toks[k + 1];
      const left = nameOf(before, text);
      if (left !== undefined && value(after) && secretField(left))
        spots.push({ tok: after, rule: 'db-field', column: left });
      const right = nameOf(after, text);
      if (right !== undefined && value(before) && secretField(right))
        spots.push({ tok: before!, rule: 'db-field', column: right });
      continue;
    }
    if (t.t === 'w' && t.v === 'INSERT') {
      // INSERT [INTO] name (c1, c2…) VALUES (v1, v2…)[, (…)]
      let j = k + 1;
      while (j < toks.length && toks[j]!.v !== '(' && toks[j]!.v !== 'VALUES' && toks[j]!.v !== 'SELECT') j++;
      if (toks[j]?.v !== '(') continue;
      const cols: string[] = [];
      j++;
      for (; j < toks.length && toks[j]!.v !== ')'; j++) {
        const nm = nameOf(toks[j], text);
        if (nm !== undefined && toks[j + 1]?.v !== '.') cols.push(nm);
      }
      if (toks[j + 1]?.v !== 'VALUES' && toks[j + 1]?.v !== 'VALUE') continue;
      j += 2;
      while (toks[j]?.v === '(') {
        let col = 0;
        let depth = 0;
        j++;
        for (; j < toks.length; j++) {
          const x = toks[j]!;
          if (x.v === '(') depth++;
          else if (x.v === ')') {
            if (depth === 0) break;
            depth--;
          } else if (x.v === ',' && depth === 0) col++;
          else if (depth === 0 && value(x) && cols[col] !== undefined && secretField(cols[col]!))
            spots.push({ tok: x, rule: 'db-field', column: cols[col]! });
        }
        j++;
        if (toks[j]?.v !== ',') break;
        j++;
      }
    }
  }
  return spots;
}

/** A parameter as text (numbers too: a PIN bound as an integer is still a PIN). */
function paramText(v: DbValue | undefined): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return undefined;
}

/** SQL text and its parameters with the secret positions handed to `secret`. */
function redactSql(
  text: string,
  params: DbValue[] | undefined,
  mysql: boolean,
  secret: SecretFn,
  where: string,
): { text: string; params: DbValue[] | undefined } {
  const spots = sqlSpots(text, mysql);
  if (spots.length === 0) return { text, params };
  let out = '';
  let at = 0;
  let nextParams: DbValue[] | undefined;
  for (const { tok, rule, column } of spots.sort((a, b) => a.tok.s - b.tok.s)) {
    const location = `${where}${column ? `:${column}` : ''}`;
    if (tok.t === 's') {
      if (tok.v === '' || tok.s < at) continue;
      const ph = secret(tok.v, rule, `${location}.text`);
      if (ph === tok.v) continue;
      out += text.slice(at, tok.s) + ph;
      at = tok.e;
    } else if (params && tok.n !== undefined && tok.n >= 0 && tok.n < params.length) {
      const v = paramText(params[tok.n]);
      if (v === undefined || v === '') continue;
      const ph = secret(v, rule, `${location}.params`);
      if (ph === v) continue;
      (nextParams ??= [...params])[tok.n] = ph;
    }
  }
  return { text: at === 0 ? text : out + text.slice(at), params: nextParams ?? params };
}

const STORE_ONE = new Set(['SET', 'SETNX', 'GETSET', 'APPEND', 'LPUSH', 'RPUSH', 'SADD', 'PUBLISH']);
const STORE_PAIRS = new Set(['MSET', 'MSETNX']);
const HASH = new Set(['HSET', 'HMSET', 'HSETNX']);
const KEYS_ALL = new Set(['DEL', 'UNLINK', 'EXISTS', 'TOUCH', 'WATCH', 'MGET']);

/** `session:<secret>`, `auth-token/<secret>`: a key naming a credential and ending with one. */
function keySecret(key: string): string | undefined {
  const m = /^(.*[:/|.])([^:/|.]+)$/.exec(key);
  if (!m) return undefined;
  const [, prefix, last] = m as unknown as [string, string, string];
  const names = prefix.split(/[:/|.]/).filter(Boolean);
  if (!names.some((n) => secretField(n))) return undefined;
  // an id (`session:42`) is not a secret: the last part must look like one
  return last.length >= 16 && !/^\d+$/.test(last) ? last : undefined;
}

/** A key whose name says its value is a credential (`reset_token:7`, `api-key`). */
function secretKey(key: string): boolean {
  return key.split(/[:/|.{}]/).some((n) => n !== '' && secretField(n));
}

function redactRedis(name: string, params: DbValue[], secret: SecretFn): DbValue[] {
  let out: DbValue[] | undefined;
  const at = (i: number, rule: string, location: string): void => {
    const v = paramText((out ?? params)[i]);
    if (v === undefined || v === '') return;
    const ph = secret(v, rule, location);
    if (ph !== v) (out ??= [...params])[i] = ph;
  };
  const str = (i: number): string | undefined => paramText(params[i]);
  const upper = (i: number): string => (str(i) ?? '').toUpperCase();
  if (name === 'CONFIG' && upper(0) === 'SET') {
    for (let i = 1; i + 1 < params.length; i += 2)
      if (/^(requirepass|masterauth|masteruser)$/i.test(str(i) ?? ''))
        at(i + 1, 'db-password', `extras.db.params:${str(i)!.toLowerCase()}`);
  } else if (name === 'ACL' && upper(0) === 'SETUSER') {
    for (let i = 2; i < params.length; i++) {
      const rule = str(i) ?? '';
      if (/^[<>#!]./.test(rule)) {
        const v = rule.slice(1);
        const ph = secret(v, 'db-password', 'extras.db.params:acl');
        if (ph !== v) (out ??= [...params])[i] = rule[0] + ph;
      }
    }
  } else if (name === 'MIGRATE') {
    for (let i = 0; i < params.length; i++) {
      if (upper(i) === 'AUTH') at(i + 1, 'db-password', 'extras.db.params:auth');
      else if (upper(i) === 'AUTH2') at(i + 2, 'db-password', 'extras.db.params:auth');
    }
  } else if (
    STORE_ONE.has(name) ||
    name === 'SETEX' ||
    name === 'PSETEX' ||
    STORE_PAIRS.has(name) ||
    HASH.has(name)
  ) {
    const pairs: Array<[number, number]> = [];
    if (STORE_ONE.has(name)) for (let i = 1; i < params.length; i++) pairs.push([0, i]);
    else if (name === 'SETEX' || name === 'PSETEX') pairs.push([0, 2]);
    else if (STORE_PAIRS.has(name)) for (let i = 0; i + 1 < params.length; i += 2) pairs.push([i, i + 1]);
    else for (let i = 1; i + 1 < params.length; i += 2) pairs.push([i, i + 1]);
    for (const [k, v] of pairs) {
      const key = str(k);
      const field = HASH.has(name) ? str(0) : undefined;
      // a key that is itself the secret (`session:<token>`) stores data about it, not a credential
      if (key !== undefined && keySecret(key) !== undefined) continue;
      if ((key !== undefined && secretKey(key)) || (field !== undefined && secretKey(field)))
        at(v, 'db-field', `extras.db.params:${name.toLowerCase()}`);
    }
  }
  // keys that hold the secret themselves
  const keys = KEYS_ALL.has(name)
    ? params.map((_, i) => i)
    : STORE_PAIRS.has(name)
      ? params.map((_, i) => i).filter((i) => i % 2 === 0)
      : [0];
  for (const i of keys) {
    const key = paramText((out ?? params)[i]);
    if (key === undefined) continue;
    const s = keySecret(key);
    if (s === undefined) continue;
    const ph = secret(s, 'db-key', `extras.db.params:key`);
    if (ph !== s) (out ??= [...params])[i] = key.slice(0, key.length - s.length) + ph;
  }
  return out ?? params;
}

/**
 * The call with its credential positions handed to `secret` (the same object when nothing
 * changed), and the exchange target rebuilt to match when it showed them.
 */
export function redactDbCall(
  call: DbCall,
  target: string,
  secret: SecretFn,
): { call: DbCall; target: string } {
  if (call.system === 'redis') {
    if (!call.params?.length) return { call, target };
    const params = redactRedis(call.command.toUpperCase(), call.params, secret);
    if (params === call.params) return { call, target };
    const shown = redisCommandLine(call.command, call.params);
    return {
      call: { ...call, params },
      target: target === shown ? redisCommandLine(call.command, params) : target,
    };
  }
  if (call.text === undefined) return { call, target };
  const mysql = call.system === 'mysql';
  const r = redactSql(call.text, call.params, mysql, secret, 'extras.db');
  // the target is the text (or its start): its literals are redacted the same way
  const t =
    target === call.text ? r.text : redactSql(target, undefined, mysql, secret, 'request.target').text;
  if (r.text === call.text && r.params === call.params) return { call, target: t };
  const next: DbCall = { ...call, text: r.text };
  if (r.params !== undefined) next.params = r.params;
  return { call: next, target: t };
}
