/**
 * Kubernetes label selectors (`app=orders,tier!=cache,env in (prod,staging),!canary`): parsed
 * once, matched against a pod's labels. The agent matches locally what the API server would
 * match for `?labelSelector=`, so the same text selects the same pods on both sides.
 */
import { usageError } from '../../core/errors.js';

type Op = 'eq' | 'ne' | 'in' | 'notin' | 'exists' | 'absent';

export interface Requirement {
  key: string;
  op: Op;
  values: string[];
}

export interface LabelSelector {
  /** As given, for the API server's `labelSelector` and for messages. */
  text: string;
  requirements: Requirement[];
  matches(labels: Record<string, string> | undefined): boolean;
}

const KEY =
  /^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const VALUE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Splits at commas outside parentheses. */
function terms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out.map((t) => t.trim());
}

export function parseSelector(text: string, flag = '--selector'): LabelSelector {
  const bad = (why: string) =>
    usageError(
      `${flag} '${text}': ${why}`,
      'Use Kubernetes label selector syntax: app=orders, tier!=cache, env in (prod,staging), !canary — joined by commas.',
    );
  const requirements: Requirement[] = [];
  if (text.trim() !== '') {
    for (const term of terms(text)) {
      if (term === '') throw bad('an empty term');
      let m: RegExpExecArray | null;
      let req: Requirement;
      if ((m = /^!\s*(\S+)$/.exec(term))) req = { key: m[1]!, op: 'absent', values: [] };
      else if ((m = /^(\S+?)\s*(==|!=|=)\s*(\S*)$/.exec(term)))
        req = { key: m[1]!, op: m[2] === '!=' ? 'ne' : 'eq', values: [m[3]!] };
      else if ((m = /^(\S+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(term)))
        req = { key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()) };
      else if ((m = /^(\S+)$/.exec(term))) req = { key: m[1]!, op: 'exists', values: [] };
      else throw bad(`cannot read '${term}'`);
      if (!KEY.test(req.key)) throw bad(`'${req.key}' is not a valid label key`);
      for (const v of req.values) if (!VALUE.test(v)) throw bad(`'${v}' is not a valid label value`);
      if ((req.op === 'in' || req.op === 'notin') && req.values.some((v) => v === ''))
        throw bad(`an empty value in the set of '${req.key}'`);
      requirements.push(req);
    }
  }
  return {
    text: text.trim(),
    requirements,
    matches(labels) {
      const l = labels ?? {};
      return requirements.every((r) => {
        const has = Object.hasOwn(l, r.key);
        const v = l[r.key];
        switch (r.op) {
          case 'eq':
            return has && v === r.values[0];
          case 'ne':
            return !has || v !== r.values[0];
          case 'in':
            return has && r.values.includes(v!);
          case 'notin':
            return !has || !r.values.includes(v!);
          case 'exists':
            return has;
          case 'absent':
            return !has;
        }
        return false;
      });
    },
  };
}
