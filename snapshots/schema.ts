/**
 * JSON Schema checks for every snapshot file (ajv, each schema compiled once on first use).
 * Failures become issues naming the file, the line, the JSON path and a fix.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { ErrorCodes, RetapError } from '../core/errors.js';
import { packageRoot } from '../core/paths.js';

export type SchemaName = 'manifest' | 'exchange' | 'transforms' | 'tokens' | 'har' | 'retap';

export interface SchemaIssue {
  file: string;
  line?: number;
  /** JSON path of the offending value: `$.counts.routes[2].count`. */
  path: string;
  message: string;
  fix: string;
}

// ajv-formats is CommonJS: its default import is the module object under NodeNext.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as unknown as (ajv: Ajv) => void;

let ajv: Ajv | undefined;
const compiled = new Map<SchemaName, ValidateFunction>();

export function schemaPath(name: SchemaName): string {
  return join(packageRoot(), 'snapshots', 'schema', `${name}.schema.json`);
}

export function validator(name: SchemaName): ValidateFunction {
  const hit = compiled.get(name);
  if (hit) return hit;
  if (!ajv) {
    ajv = new Ajv({ allErrors: false, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true });
    addFormats(ajv);
  }
  const schema = JSON.parse(readFileSync(schemaPath(name), 'utf8')) as object;
  const fn = ajv.compile(schema);
  compiled.set(name, fn);
  return fn;
}

/** A validator for a definition inside a compiled schema (e.g. one HAR entry). */
export function subValidator(name: SchemaName, definition: string): ValidateFunction {
  validator(name);
  const fn = ajv!.getSchema(`retap:${name}.schema.json#/definitions/${definition}`);
  if (!fn) throw new Error(`schema ${name} has no definition '${definition}'`);
  return fn;
}

/** `/a/0/b` → `$.a[0].b` */
export function jsonPath(pointer: string, extra?: string): string {
  const parts = pointer === '' ? [] : pointer.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  let out = '$';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`;
  return out;
}

export function pointerParts(pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function shown(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

const COMBINATORS = new Set(['oneOf', 'anyOf', 'if', 'allOf', 'not']);

/** Pick the error a person should see first: the deepest, not a combinator, merged over alternatives. */
function pick(errors: ErrorObject[]): { main: ErrorObject; alternatives: ErrorObject[] } {
  const concrete = errors.filter((e) => !COMBINATORS.has(e.keyword));
  const pool = concrete.length > 0 ? concrete : errors;
  const depth = (e: ErrorObject) => pointerParts(e.instancePath).length;
  const deepest = Math.max(...pool.map(depth));
  const same = pool.filter((e) => depth(e) === deepest);
  return { main: same[0]!, alternatives: same };
}

function describe(e: ErrorObject, alternatives: ErrorObject[]): { extra?: string; message: string; fix: string } {
  const p = e.params as Record<string, unknown>;
  const found = e.data === undefined ? '' : ` (found ${shown(e.data)})`;
  const typeLike = alternatives.every((a) => a.keyword === 'type' || a.keyword === 'const' || a.keyword === 'enum');
  if (alternatives.length > 1 && typeLike) {
    const kinds = alternatives.map((a) => {
      const ap = a.params as Record<string, unknown>;
      if (a.keyword === 'type') return String(ap.type);
      if (a.keyword === 'const') return shown(ap.allowedValue);
      return (ap.allowedValues as unknown[]).map(shown).join(', ');
    });
    return { message: `must be ${kinds.join(' or ')}${found}`, fix: `write ${kinds.join(' or ')} here` };
  }
  switch (e.keyword) {
    case 'required':
      return {
        message: `is missing the required field '${p.missingProperty}'`,
        fix: `add '${p.missingProperty}:' to this object`,
      };
    case 'additionalProperties': {
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return {
        extra: String(p.additionalProperty),
        message: `is not a known field`,
        fix: `remove it or fix its spelling (known fields: ${known.join(', ')}; custom fields start with 'x-')`,
      };
    }
    case 'type':
      return { message: `must be ${p.type}${found}`, fix: `write ${/^[aeiou]/.test(String(p.type)) ? 'an' : 'a'} ${p.type} here` };
    case 'const':
      return { message: `must be ${shown(p.allowedValue)}${found}`, fix: `set it to ${shown(p.allowedValue)}` };
    case 'enum': {
      const allowed = (p.allowedValues as unknown[]).map(shown).join(', ');
      return { message: `must be one of ${allowed}${found}`, fix: `use one of ${allowed}` };
    }
    case 'pattern':
      return { message: `does not match ${p.pattern}${found}`, fix: `write a value matching ${p.pattern}` };
    case 'format':
      return {
        message: `is not a valid ${p.format}${found}`,
        fix: p.format === 'date-time' ? 'write an RFC 3339 time such as 2024-05-01T12:00:00Z' : `write a valid ${p.format}`,
      };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return { message: `must be ${p.comparison} ${p.limit}${found}`, fix: `use a number ${p.comparison} ${p.limit}` };
    case 'minLength':
      return { message: `must not be shorter than ${p.limit} characters${found}`, fix: 'write a longer value' };
    case 'minItems':
    case 'maxItems':
      return { message: `${e.message}${found}`, fix: `give ${e.keyword === 'minItems' ? 'at least' : 'at most'} ${p.limit} items` };
    default:
      return { message: `${e.message ?? 'is invalid'}${found}`, fix: 'see the schema named in the error for the expected shape' };
  }
}

/** Issues from ajv errors; `locate` maps a path (as parts) to a line number when it can. */
export function issuesFrom(
  errors: ErrorObject[] | null | undefined,
  file: string,
  locate?: (parts: string[]) => number | undefined,
): SchemaIssue[] {
  if (!errors || errors.length === 0) return [];
  const { main, alternatives } = pick(errors);
  const d = describe(main, alternatives);
  const parts = pointerParts(main.instancePath);
  if (d.extra !== undefined) parts.push(d.extra);
  const issue: SchemaIssue = {
    file,
    path: jsonPath(main.instancePath, d.extra),
    message: d.message,
    fix: d.fix,
  };
  const line = locate?.(parts);
  if (line !== undefined) issue.line = line;
  return [issue];
}

export function formatIssue(i: SchemaIssue): string {
  return `${i.file}${i.line === undefined ? '' : `:${i.line}`}: ${i.path} ${i.message}; fix: ${i.fix}`;
}

export function invalid(issues: SchemaIssue[], schema: SchemaName | undefined, cause?: unknown): RetapError {
  const first = issues[0]!;
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  return new RetapError(ErrorCodes.SNAPSHOT_INVALID, `${formatIssue(first)}${more}`, {
    hint: schema ? `The expected shape is in ${schemaPath(schema)}.` : 'Restore the file from version control or re-create the snapshot.',
    details: { issues },
    cause,
  });
}

/** Parse YAML text and check it against a schema; errors carry the YAML line. */
export function parseYamlChecked(text: string, file: string, schema: SchemaName): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    const line = lines.linePos(err.pos[0]).line;
    throw invalid([{ file, line, path: '$', message: `is not valid YAML: ${err.message.split('\n')[0]}`, fix: 'fix the YAML syntax on that line' }], undefined);
  }
  const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  const check = validator(schema);
  if (!check(value)) {
    const locate = (parts: string[]): number | undefined => {
      for (let n = parts.length; n >= 0; n--) {
        const node = n === 0 ? doc.contents : doc.getIn(parts.slice(0, n), true);
        if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
      }
      return undefined;
    };
    throw invalid(issuesFrom(check.errors, file, locate), schema);
  }
  return value;
}

/** Check one parsed JSON value (e.g. an exchange line) against a schema. */
export function checkValue(value: unknown, schema: SchemaName, file: string, line?: number): void {
  const check = validator(schema);
  if (check(value)) return;
  throw invalid(issuesFrom(check.errors, file, () => line), schema);
}
