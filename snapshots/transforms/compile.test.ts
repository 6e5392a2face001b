import { describe, expect, it } from 'vitest';
import { isRetapError } from '../../core/errors.js';
import { loadTransformsText } from './compile.js';

function error(yaml: string): string {
  try {
    loadTransformsText(yaml);
  } catch (e) {
    if (isRetapError(e)) {
      expect(e.code).toBe('RETAP_SNAPSHOT_INVALID');
      return e.message;
    }
    throw e;
  }
  throw new Error('expected an error');
}

const head = 'version: 1\nrules:\n';

describe('bad rules are schema errors that name the rule', () => {
  it('unknown extractor', () => {
    expect(error(`${head}  - id: login-token\n    extract:\n      - { from: xpath, in: response, path: /a, as: t }\n`)).toBe(
      `transforms.yaml:5: $.rules[0].extract[0].from (rule 'login-token') must be one of "header", "cookie", "query", "path", "jsonpath", "protobuf", "regex", "jwt", "form" (found "xpath"); fix: use one of "header", "cookie", "query", "path", "jsonpath", "protobuf", "regex", "jwt", "form"`,
    );
  });

  it('an x- extractor no plugin provides', () => {
    expect(error(`${head}  - id: custom\n    extract:\n      - { from: x-xpath, as: t }\n`)).toBe(
      `transforms.yaml:5: $.rules[0].extract[0].from (rule 'custom') uses the extractor 'x-xpath' that no plugin provides; fix: register it with the engine, or use header, cookie, query, path, jsonpath, regex, jwt or form`,
    );
  });

  it('bad JSON path', () => {
    expect(error(`${head}  - id: ok\n  - id: order-id\n    extract:\n      - { from: jsonpath, in: response, path: '$.items[', as: id }\n`)).toBe(
      `transforms.yaml:6: $.rules[1].extract[0].path (rule 'order-id') '$.items[': '[' at position 7 is never closed; fix: write a JSON path such as $.items[0].id or $['a-b']`,
    );
    expect(error(`${head}  - id: inj\n    extract: [{ from: header, name: a, as: a }]\n    inject:\n      - { to: jsonpath, path: 'items.id', value: a }\n`)).toContain(
      `$.rules[0].inject[0].path (rule 'inj') 'items.id' must start with '$'`,
    );
  });

  it('cycle between rules', () => {
    const msg = error(`${head}  - id: a
    transform: [{ op: load, var: fromB }, { op: store, var: fromA }]
  - id: b
    transform: [{ op: load, var: fromA }, { op: store, var: fromB }]
`);
    expect(msg).toBe(
      "transforms.yaml:3: $.rules[0] rules feed each other in a cycle: 'a' → 'b' → 'a'; fix: a rule may only load variables stored by rules that do not depend on it; break the loop",
    );
  });

  it('a variable nobody makes, a bad regex, both sides in one rule, a missing key reference', () => {
    expect(error(`${head}  - id: t\n    inject: [{ to: header, name: a, value: 'Bearer \${nope}' }]\n`)).toContain(
      "$.rules[0] (rule 't') uses the variable 'nope' that no rule extracts or stores",
    );
    expect(error(`${head}  - id: r\n    extract: [{ from: regex, pattern: 'a(', as: x }]\n`)).toContain("$.rules[0].extract[0].pattern (rule 'r') 'a(' is not a valid regular expression");
    expect(error(`${head}  - id: both\n    extract: [{ from: header, in: request, name: a, as: x }, { from: header, in: response, name: b, as: y }]\n`)).toContain(
      "(rule 'both') reads both the request and the response",
    );
    expect(error(`${head}  - id: k\n    extract: [{ from: header, name: a, as: x }]\n    transform: [{ op: resignJwt, key: 'secret123' }]\n`)).toContain("$.rules[0].transform[0].key (rule 'k') needs a key reference");
  });

  it('unknown field and repeated id name the rule too', () => {
    expect(error(`${head}  - id: x\n    extract: [{ from: header, name: a, as: x, nmae: b }]\n`)).toContain("$.rules[0].extract[0].nmae (rule 'x') is not a known field");
    expect(error(`${head}  - id: x\n  - id: x\n`)).toBe("transforms.yaml:4: $.rules[1].id (rule 'x') repeats the id of $.rules[0]; fix: give every rule its own id");
  });

  it('accepts a good file and orders producers before consumers', () => {
    const { rules } = loadTransformsText(`${head}  - id: use
    transform: [{ op: load, var: tok }]
    inject: [{ to: header, name: authorization, value: 'Bearer \${tok}' }]
  - id: make
    extract: [{ from: jsonpath, path: $.token, as: tok }]
    transform: [{ op: store, var: tok }]
`);
    expect(rules.map((r) => r.id)).toEqual(['make', 'use']);
  });
});
