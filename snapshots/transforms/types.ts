/**
 * Typed shape of transforms.yaml rules (the JSON Schema in snapshots/schema/transforms.schema.json
 * is the contract; these types mirror it).
 */
import type { Direction } from '../../core/exchange.js';

export type Side = 'request' | 'response';

export interface RuleMatch {
  direction?: Direction;
  method?: string;
  host?: string;
  /** Route template (`/orders/{id}`) or glob (`/orders/*`, `/api/**`). */
  route?: string;
  /** `200`, `2xx`, `400-499`. */
  status?: number | string;
}

export type ExtractorKind = 'header' | 'cookie' | 'query' | 'path' | 'jsonpath' | 'protobuf' | 'regex' | 'jwt' | 'form' | `x-${string}`;

export interface Extractor {
  from: ExtractorKind;
  in?: Side;
  as: string;
  name?: string;
  segment?: number;
  path?: string;
  /** regex: searched in the body; other extractors: applied to what they read. */
  pattern?: string;
  group?: number | string;
  claim?: string;
  /** jwt: where the token is, as a location (`header:authorization`, `jsonpath:$.token`). */
  source?: string;
}

export type StepOp =
  | 'replace'
  | 'store'
  | 'load'
  | 'shiftTime'
  | 'resignJwt'
  | 'uuid'
  | 'base64Encode'
  | 'base64Decode'
  | 'urlRewrite'
  | `x-${string}`;

export interface Step {
  op: StepOp;
  var?: string;
  pattern?: string;
  with?: string;
  by?: string;
  format?: string;
  key?: string;
  alg?: string;
  from?: string;
  to?: string;
}

export type InjectorKind = 'header' | 'cookie' | 'query' | 'path' | 'jsonpath' | 'protobuf' | 'regex' | 'form' | 'body' | `x-${string}`;

export interface Injector {
  to: InjectorKind;
  in?: Side;
  value: string;
  mode?: 'set' | 'substitute';
  match?: RuleMatch;
  name?: string;
  segment?: number;
  path?: string;
  pattern?: string;
}

export interface Rule {
  id: string;
  description?: string;
  enabled?: boolean;
  match?: RuleMatch;
  extract?: Extractor[];
  transform?: Step[];
  inject?: Injector[];
  [extension: `x-${string}`]: unknown;
}
