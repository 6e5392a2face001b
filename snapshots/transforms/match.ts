/** Rule `match` blocks compiled to predicates over an exchange (direction, method, host, route, status). */
import type { Exchange } from '../../core/exchange.js';
import { exchangeAuthority } from '../../core/http.js';
import { routeMatches } from '../routes.js';
import type { RuleMatch } from './types.js';

export type MatchFn = (ex: Exchange, status?: number) => boolean;

function globRe(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i');
}

/** `200`, `2xx`, `400-499`, `200,201`; throws on anything else. */
export function statusTest(spec: number | string): (s: number) => boolean {
  const parts = String(spec).split(',').map((p) => p.trim());
  const tests = parts.map((p) => {
    if (/^\d{3}$/.test(p)) return (s: number) => s === Number(p);
    if (/^\dxx$/i.test(p)) return (s: number) => Math.floor(s / 100) === Number(p[0]);
    const m = /^(\d{3})-(\d{3})$/.exec(p);
    if (m) return (s: number) => s >= Number(m[1]) && s <= Number(m[2]);
    throw new Error(`'${p}' is not a status (200, 2xx, 400-499)`);
  });
  return (s) => tests.some((t) => t(s));
}

export function compileMatch(m: RuleMatch | undefined): MatchFn {
  if (!m) return () => true;
  const methods = m.method?.split(/[|,]/).map((x) => x.trim().toUpperCase());
  const host = m.host === undefined ? undefined : globRe(m.host);
  const status = m.status === undefined ? undefined : statusTest(m.status);
  return (ex, liveStatus) => {
    if (m.direction && ex.direction !== m.direction) return false;
    if (methods && !methods.includes(ex.request.method.toUpperCase())) return false;
    if (host && !host.test(exchangeAuthority(ex).replace(/:\d+$/, '')) && !host.test(exchangeAuthority(ex))) return false;
    if (m.route !== undefined && !routeMatches(m.route, ex.request.target)) return false;
    if (status) {
      const s = liveStatus ?? ex.response?.status;
      if (s === undefined || !status(s)) return false;
    }
    return true;
  };
}
