/**
 * Response schemas inferred from the recording (per route and status: types, fields present in
 * every recorded answer as required, string formats every recorded value had) and checked with
 * ajv against the candidate's answers. New fields are allowed (the diff reports them).
 */
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { jsonType } from './json-diff.js';
import { fromPointer, preview } from './paths.js';
import type { Difference } from './types.js';

const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as unknown as (ajv: Ajv, formats: string[]) => void;

type JsonSchema = Record<string, unknown>;

interface Shape {
  types: Set<string>;
  samples: number;
  objects: number;
  props: Map<string, Shape>;
  propSeen: Map<string, number>;
  items?: Shape;
  strings: number;
  formats: Map<string, number>;
}

const FORMATS: Array<[string, RegExp]> = [
  ['date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/i],
  ['date', /^\d{4}-\d{2}-\d{2}$/],
  ['uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i],
  ['email', /^[^\s@]+@[^\s@]+\.[^\s@]+$/],
  ['uri', /^https?:\/\/[^\s]+$/],
];

const newShape = (): Shape => ({
  types: new Set(),
  samples: 0,
  objects: 0,
  props: new Map(),
  propSeen: new Map(),
  strings: 0,
  formats: new Map(),
});

function add(shape: Shape, v: unknown, depth = 0): void {
  shape.samples++;
  const t = jsonType(v);
  shape.types.add(t);
  if (depth > 32) return;
  if (t === 'object') {
    shape.objects++;
    for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
      let s = shape.props.get(k);
      if (!s) shape.props.set(k, (s = newShape()));
      shape.propSeen.set(k, (shape.propSeen.get(k) ?? 0) + 1);
      add(s, child, depth + 1);
    }
  } else if (t === 'array') {
    shape.items ??= newShape();
    for (const el of (v as unknown[]).slice(0, 50)) add(shape.items, el, depth + 1);
  } else if (t === 'string') {
    shape.strings++;
    for (const [name, re] of FORMATS)
      if (re.test(v as string)) shape.formats.set(name, (shape.formats.get(name) ?? 0) + 1);
  }
}

function toSchema(shape: Shape): JsonSchema {
  const types = [...shape.types].sort();
  const out: JsonSchema = { type: types.length === 1 ? types[0] : types };
  if (shape.objects > 0) {
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const [k, s] of shape.props) {
      properties[k] = toSchema(s);
      if (shape.propSeen.get(k) === shape.objects) required.push(k);
    }
    out.properties = properties;
    if (required.length) out.required = required;
  }
  if (shape.items && shape.items.samples > 0) out.items = toSchema(shape.items);
  if (shape.strings > 0 && shape.strings === shape.samples) {
    const format = [...shape.formats].find(([, n]) => n === shape.strings)?.[0];
    if (format) out.format = format;
  }
  return out;
}

export interface SchemaSet {
  /** Adds a recorded JSON answer of `route` with `status`. */
  add(route: string, status: number, body: unknown): void;
  /** Schema violations of a candidate answer; empty when nothing was recorded for the key. */
  check(route: string, status: number, body: unknown): Difference[];
  /** The inferred schema (for reports and tests). */
  schema(route: string, status: number): JsonSchema | undefined;
}

export function createSchemaSet(): SchemaSet {
  const shapes = new Map<string, Shape>();
  const compiled = new Map<string, ValidateFunction>();
  let ajv: Ajv | undefined;
  const key = (route: string, status: number): string => `${route} ${status}`;
  return {
    add(route, status, body) {
      const k = key(route, status);
      let s = shapes.get(k);
      if (!s) shapes.set(k, (s = newShape()));
      add(s, body);
      compiled.delete(k);
    },
    schema(route, status) {
      const s = shapes.get(key(route, status));
      return s ? toSchema(s) : undefined;
    },
    check(route, status, body) {
      const k = key(route, status);
      const shape = shapes.get(k);
      if (!shape) return [];
      let validate = compiled.get(k);
      if (!validate) {
        if (!ajv) {
          ajv = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true });
          addFormats(
            ajv,
            FORMATS.map(([n]) => n),
          );
        }
        validate = ajv.compile(toSchema(shape));
        compiled.set(k, validate);
      }
      if (validate(body)) return [];
      const out: Difference[] = [];
      for (const e of validate.errors ?? []) {
        const at = fromPointer(e.instancePath);
        if (e.keyword === 'type') {
          const value = valueAt(body, e.instancePath);
          out.push({
            target: 'schema',
            path: at,
            kind: 'schema-type',
            rating: 'breaking',
            candidate: preview(value),
            recorded: (e.params as { type: unknown }).type,
            message: `${at} must be ${String((e.params as { type: unknown }).type)} (found ${jsonType(value)})`,
          });
        } else if (e.keyword === 'required') {
          const field = (e.params as { missingProperty: string }).missingProperty;
          const path = at === '$' ? `$.${field}` : `${at}.${field}`;
          out.push({
            target: 'schema',
            path,
            kind: 'schema-required',
            rating: 'breaking',
            message: `${path} is required by every recorded answer but missing`,
          });
        } else if (e.keyword === 'format') {
          const fmt = (e.params as { format: string }).format;
          out.push({
            target: 'schema',
            path: at,
            kind: 'schema-format',
            rating: 'warning',
            recorded: fmt,
            candidate: preview(valueAt(body, e.instancePath)),
            message: `${at} is no longer a ${fmt}`,
          });
        }
      }
      return out;
    },
  };
}

function valueAt(body: unknown, pointer: string): unknown {
  let v: unknown = body;
  if (pointer === '') return v;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[seg];
  }
  return v;
}
