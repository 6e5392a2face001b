/**
 * Where credentials sit (the built-in rules of redaction) and what makes a value worth hunting
 * everywhere. Names and shapes only: the redactor (../redaction.ts) walks the exchange.
 */
import { entropy } from '../tokens/classify.js';
import { MIN_PATTERN } from './matcher.js';

export const PLACEHOLDER = /^REDACTED-[0-9a-f]{16}$/;
/** A placeholder anywhere inside a text (global: reset lastIndex or use matchAll). */
export const PLACEHOLDER_IN_TEXT = /REDACTED-[0-9a-f]{16}/g;

export const AUTH_HEADERS = new Set(['authorization', 'proxy-authorization']);
export const API_KEY_HEADER =
  /(^|[-_])(api[-_]?key|apikey|auth[-_]?token|access[-_]?token|token|secret|password|passwd|signature|session[-_]?id|csrf[-_]?token|xsrf[-_]?token)$/i;
export const QUERY_PARAM =
  /^(access[-_]?token|id[-_]?token|refresh[-_]?token|token|api[-_]?key|apikey|key|secret|client[-_]?secret|password|passwd|pwd|sig|signature|session[-_]?id|auth)$/i;
/** Cookie names that say "credential" whatever the value looks like. */
const COOKIE_NAME = /sess|sid$|^sid|token|auth|jwt|login|remember|csrf|xsrf|secret|key$|^id$/i;

/** Card-like digit runs with a known issuer prefix; separators (space, dash) allowed between digits. */
// Not inside a longer token: a digit run within a UUID or hex id (`c4532015-1128-4036-8b6f…`) is no card.
export const CARD =
  /(?<![0-9A-Za-z_-])(?:4|5[1-5]|2[2-7]|3[47]|3[068]|6(?:011|5|4[4-9])|35)(?:[ -]?\d){10,17}(?![0-9A-Za-z_-])/g;

export function luhnValid(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Last words of a JSON field name that make its value a credential (`access_token`, `sessionId`…). */
const SECRET_LAST = new Set([
  'password',
  'passwd',
  'pwd',
  'passphrase',
  'passcode',
  'secret',
  'token',
  'credential',
  'credentials',
  'session',
  'sessionid',
  'sid',
  'apikey',
  'jwt',
  'csrf',
  'xsrf',
  'auth',
  'cookie',
  'otp',
]);
/** Two last words that do (`api key`, `session id`, `private key`…). */
const SECRET_PAIR = new Set([
  'api key',
  'private key',
  'secret key',
  'access key',
  'session id',
  'session key',
  'auth key',
  'signing key',
  'client secret',
  'refresh token',
  'access token',
  'id token',
  'auth token',
]);
/** Anywhere in the name: a password is a password (`password_confirmation`, `new_password`). */
const PASSWORD_WORD = /^(password|passwd|passphrase|passcode)$/;

function words(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

/** Is a JSON field of this name a credential (its string or number value is redacted)? */
export function secretField(name: string): boolean {
  const w = words(name);
  const last = w.at(-1) ?? '';
  if (w.some((x) => PASSWORD_WORD.test(x)) || last === 'pin') return true;
  return SECRET_LAST.has(last) || (w.length >= 2 && SECRET_PAIR.has(`${w.at(-2)} ${last}`));
}

/** A cookie value redacted where it stands: credential-like name, or a value nobody could guess. */
export function secretCookie(name: string, value: string): boolean {
  if (value === '' || PLACEHOLDER.test(value)) return false;
  return COOKIE_NAME.test(name) || unguessable(value, 16);
}

/**
 * Values worth finding everywhere once they were seen in a credential position: long enough
 * (MIN_PATTERN) and with enough entropy that a match elsewhere is this value and not chance.
 * Short numbers, words and booleans are redacted where they stand, never hunted.
 */
export function unguessable(value: string, minLength = MIN_PATTERN): boolean {
  const n = value.length;
  if (n < minLength || n > 16_384 || PLACEHOLDER.test(value)) return false;
  if (/^\d+$/.test(value)) return n >= 12;
  if (/^(true|false|null|undefined|bearer|basic)$/i.test(value)) return false;
  if (/^[a-z]+(?:[ _-][a-z]+)*$/i.test(value) && n < 24) return false;
  return entropy(value) * n >= 24;
}

/**
 * The forms a secret takes in text: as is, JSON-escaped (also with `\/`), percent-encoded the
 * ways common clients do it (all reserved characters, or keeping `/` and `=`; upper or lower
 * hex; `+` for space) — and each of those JSON-escaped once more, which is how they sit inside
 * a stored snapshot line.
 */
export function variantsOf(value: string): string[] {
  const out = new Set<string>([value]);
  const json = JSON.stringify(value).slice(1, -1);
  out.add(json);
  out.add(json.replace(/\//g, '\\/'));
  const pct = encodeURIComponent(value);
  if (pct !== value) {
    const forms = [
      pct,
      pct.replace(/%2F/g, '/'),
      pct.replace(/%3D/g, '='),
      pct.replace(/%2F/g, '/').replace(/%3D/g, '='),
    ];
    for (const f of forms) {
      out.add(f);
      out.add(f.replace(/%20/g, '+'));
      out.add(f.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()));
    }
  }
  for (const v of [...out]) out.add(JSON.stringify(v).slice(1, -1));
  return [...out].filter((v) => v.length >= MIN_PATTERN);
}
