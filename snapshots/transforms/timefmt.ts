/**
 * Times in the formats traffic carries, recognised and written back in the same format, so a
 * shifted time looks exactly like the recorded one (precision, separator, zone, digits).
 */

export type TimeFormat = 'iso8601' | 'date' | 'http-date' | 'unix' | 'unix-ms' | 'unix-us';

export interface ParsedTime {
  format: TimeFormat;
  /** Milliseconds since the epoch. */
  ms: number;
  /** Digits below the millisecond that the text held (iso8601 fractions, unix-us). */
  subMs: string;
  /** iso8601: separator between date and time, seconds present, fraction digits, zone text. */
  iso?: { sep: string; seconds: boolean; fraction: number; zone: string };
}

/** Plausible range for bare numbers: 2001-09-09 .. 2100-01-01 (seconds). */
const MIN_S = 1_000_000_000;
const MAX_S = 4_102_444_800;

const ISO = /^(\d{4})-(\d{2})-(\d{2})([T ])(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

function zoneMinutes(zone: string): number {
  if (zone === '' || zone === 'Z') return 0;
  const sign = zone[0] === '-' ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'));
}

function valid(ms: number): boolean {
  return Number.isFinite(ms) && ms >= MIN_S * 1000 && ms <= MAX_S * 1000;
}

/** Recognises a time; `only` restricts the formats tried. Bare numbers must be 2001..2100. */
export function parseTime(text: string, only?: TimeFormat): ParsedTime | undefined {
  const t = text.trim();
  if (t !== text || t.length < 10 || t.length > 40) return undefined;
  const want = (f: TimeFormat): boolean => only === undefined || only === f;
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (t.length === 10 && want('unix') && n >= MIN_S && n <= MAX_S) return { format: 'unix', ms: n * 1000, subMs: '' };
    if (t.length === 13 && want('unix-ms') && valid(n)) return { format: 'unix-ms', ms: n, subMs: '' };
    if (t.length === 16 && want('unix-us')) {
      const ms = Number(t.slice(0, 13));
      if (valid(ms)) return { format: 'unix-us', ms, subMs: t.slice(13) };
    }
    return undefined;
  }
  let m = ISO.exec(t);
  if (m && want('iso8601')) {
    const [, y, mo, d, sep, hh, mm, ss, frac = '', zone = ''] = m;
    const base = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(hh), Number(mm), Number(ss ?? 0));
    const ms = base + Number(frac.slice(0, 3).padEnd(3, '0')) - zoneMinutes(zone) * 60_000;
    if (!valid(ms) || Number(mo) > 12 || Number(d) > 31 || Number(hh) > 23 || Number(mm) > 59) return undefined;
    return { format: 'iso8601', ms, subMs: frac.slice(3), iso: { sep: sep!, seconds: ss !== undefined, fraction: frac.length, zone } };
  }
  m = DATE.exec(t);
  if (m && want('date')) {
    const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
    if (!valid(ms) || Number(m[2]) > 12 || Number(m[3]) > 31) return undefined;
    return { format: 'date', ms, subMs: '' };
  }
  m = HTTP_DATE.exec(t);
  if (m && want('http-date')) {
    const ms = Date.UTC(Number(m[4]), MONTHS.indexOf(m[3]!), Number(m[2]), Number(m[5]), Number(m[6]), Number(m[7]));
    if (!valid(ms)) return undefined;
    return { format: 'http-date', ms, subMs: '' };
  }
  return undefined;
}

const p2 = (n: number): string => String(n).padStart(2, '0');

/** Writes `ms` in the format (and for iso8601 the precision and zone) of `like`. */
export function formatTime(ms: number, like: ParsedTime): string {
  const whole = Math.floor(ms);
  switch (like.format) {
    case 'unix':
      return String(Math.floor(whole / 1000));
    case 'unix-ms':
      return String(whole);
    case 'unix-us':
      return `${whole}${like.subMs}`;
    case 'date':
      return new Date(whole).toISOString().slice(0, 10);
    case 'http-date': {
      const d = new Date(whole);
      return `${DAYS[d.getUTCDay()]}, ${p2(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} GMT`;
    }
    case 'iso8601': {
      const iso = like.iso!;
      const local = new Date(whole + zoneMinutes(iso.zone) * 60_000);
      let out = `${local.toISOString().slice(0, 10)}${iso.sep}${p2(local.getUTCHours())}:${p2(local.getUTCMinutes())}`;
      if (iso.seconds) out += `:${p2(local.getUTCSeconds())}`;
      if (iso.fraction > 0) out += `.${(String(local.getUTCMilliseconds()).padStart(3, '0') + like.subMs).slice(0, iso.fraction).padEnd(iso.fraction, '0')}`;
      return out + iso.zone;
    }
  }
}

/** Shifts a time text by `deltaMs`, keeping its format; undefined when it is not a time. */
export function shiftTimeText(text: string, deltaMs: number, only?: TimeFormat): string | undefined {
  const parsed = parseTime(text, only);
  if (!parsed) return undefined;
  return formatTime(parsed.ms + deltaMs, parsed);
}
