/**
 * `where` strings name a place in a message, in tokens.yaml and in reports:
 * `header:NAME`, `cookie:NAME`, `query:NAME`, `path:N`, `jsonpath:$.a.b`, `form:NAME`,
 * `regex:PATTERN`, `body`. Header names are lower-cased so equal places compare equal.
 */
import { JsonPathError, parseJsonPath } from './jsonpath.js';
import type { Location } from './message.js';

export class WhereError extends Error {}

export function parseWhere(where: string): Location {
  if (where === 'body') return { kind: 'body' };
  const colon = where.indexOf(':');
  if (colon === -1) throw new WhereError(`'${where}' is not a location (kind:argument, e.g. header:authorization)`);
  const kind = where.slice(0, colon);
  const arg = where.slice(colon + 1);
  switch (kind) {
    case 'header':
    case 'cookie':
    case 'query':
    case 'form':
      if (arg === '') throw new WhereError(`'${where}' needs a name after '${kind}:'`);
      return { kind, name: kind === 'header' ? arg.toLowerCase() : arg };
    case 'path':
      if (!/^\d+$/.test(arg)) throw new WhereError(`'${where}': path needs a segment number (0 is the first)`);
      return { kind, segment: Number(arg) };
    case 'jsonpath':
      try {
        return { kind, path: parseJsonPath(arg) };
      } catch (e) {
        throw new WhereError(e instanceof JsonPathError ? e.message : String(e));
      }
    case 'protobuf':
      if (!/^#\d+(\.\d+)*$/.test(arg)) throw new WhereError(`'${where}': protobuf needs a field-number path such as #1 or #2.3`);
      return { kind, name: arg };
    case 'regex':
      try {
        return { kind, regex: new RegExp(arg) };
      } catch (e) {
        throw new WhereError(`'${arg}' is not a valid regular expression (${(e as Error).message})`);
      }
    default:
      throw new WhereError(`'${kind}' is not a location kind (header, cookie, query, path, jsonpath, protobuf, form, regex, body)`);
  }
}

/** The `where` string of a rule's extractor or injector fields. */
export function whereOf(f: { kind: string; name?: string; segment?: number; path?: string; pattern?: string }): string {
  switch (f.kind) {
    case 'header':
      return `header:${(f.name ?? '').toLowerCase()}`;
    case 'cookie':
    case 'query':
    case 'form':
      return `${f.kind}:${f.name ?? ''}`;
    case 'path':
      return `path:${f.segment ?? 0}`;
    case 'jsonpath':
      return `jsonpath:${f.path ?? '$'}`;
    case 'protobuf':
      return `protobuf:${f.path ?? ''}`;
    case 'regex':
      return `regex:${f.pattern ?? ''}`;
    default:
      return f.kind;
  }
}
