/** `retap snapshot tokens SNAPSHOT`: discovered tokens (flows and volatile values). */
import type { Sub } from './sub.js';

export const TOKENS_HELP = `Usage: retap snapshot tokens SNAPSHOT [--discover] [--write [--out DIR]] [--json] [--limit N]

Prints the tokens of a version: values that answers produced and later requests of the same
client session reused (login tokens, created ids, CSRF tokens…), each with its origin, uses and
the transforms.yaml rule that carries it at replay; and values that are volatile by nature
(JWTs with their iat/exp, times in any format, uuids, nonces, request ids), per route and place.
Reads tokens.yaml; when it is empty, or with --discover, discovers them from the exchanges now.
  --discover     discover again even when tokens.yaml has entries
  --write        save the discovered tokens.yaml and transforms.yaml as a new version whose
                 parent is SNAPSHOT (rules you wrote yourself, with other ids, are kept)
  --out DIR      store or vN directory for --write (default: the next version in the same store)
  --limit N      example uses listed per rule (default 3)
  --json         the tokens as JSON
Details: docs/tokens-and-transforms.md.`;

interface Values {
  discover?: boolean;
  write?: boolean;
  out?: string;
  limit?: string;
  json?: boolean;
}

export const tokens: Sub = {
  help: TOKENS_HELP,
  async run(argv) {
    const [{ parse, parseIntFlag }, { usageError }, snapshots, tk, { json, out, table }, { writeDerived, label }] = await Promise.all([
      import('../../args.js'),
      import('../../../core/errors.js'),
      import('../../../snapshots/index.js'),
      import('../../../snapshots/index.js'),
      import('./sub.js'),
      import('../../../snapshots/index.js'),
    ]);
    const { values, positionals } = parse<Values>(
      'snapshot tokens',
      argv,
      { discover: { type: 'boolean' }, write: { type: 'boolean' }, out: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
      true,
    );
    if (positionals.length !== 1) throw usageError('retap snapshot tokens: give one SNAPSHOT');
    if (values.out && !values.write) throw usageError('retap snapshot tokens: --out goes with --write');
    const limit = values.limit === undefined ? 3 : parseIntFlag(values.limit, '--limit', 0, 1000);
    const snap = await snapshots.openSnapshot(positionals[0]!);
    const stored = await snap.tokens();
    const fresh = values.discover || values.write || stored.tokens.length === 0;
    const emitted = fresh ? tk.emitFiles(await tk.discoverTokens(snap.exchanges())) : undefined;
    const file = emitted?.tokens ?? stored;
    const list = file.tokens as unknown as import('../../../snapshots/index.js').TokenEntry[];

    let written: string | undefined;
    if (values.write && emitted) {
      const own = (await snap.transforms()).rules.filter((r) => !emitted.transforms.rules.some((d) => d.id === r.id));
      const transforms = { ...emitted.transforms, rules: [...emitted.transforms.rules, ...own] };
      const d = await writeDerived([snap], snap.lines(), values.out ? { dir: values.out } : {}, {
        transforms,
        tokens: emitted.tokens,
        notes: [`tokens discovered from ${label(snap)} by retap snapshot tokens --write`],
      });
      written = d.path;
    }

    if (values.json) {
      json({ snapshot: snap.path, source: fresh ? 'discovered' : 'tokens.yaml', ...(written ? { written } : {}), tokens: list });
      return 0;
    }
    const flows = list.filter((t) => !t.volatile);
    const volatile = list.filter((t) => t.volatile);
    const byRule = new Map<string, typeof flows>();
    for (const t of flows) {
      const k = t.rule ?? '-';
      byRule.set(k, [...(byRule.get(k) ?? []), t]);
    }
    const m = snap.manifest;
    out(
      `${m.name}@v${m.version}: ${m.counts.exchanges} exchanges; ${flows.length} token(s) in ${byRule.size} flow rule(s); ${volatile.length} volatile place(s)` +
        (fresh ? (written ? `\nwritten as a new version: ${written}` : ' (discovered now; --write saves them as a new version)') : ' (from tokens.yaml)'),
    );
    if (flows.length > 0) {
      out('\nFlows: values from answers reused by later requests of the same session');
      const rows = [['RULE', 'KIND', 'ORIGIN', 'TOKENS', 'USES', 'USED AT']];
      for (const [rule, ts] of byRule) {
        const at = new Set(ts.flatMap((t) => (t.uses ?? []).map((u) => u.where)));
        rows.push([rule, ts[0]!.kind ?? '-', `${ts[0]!.route ?? '?'} response ${ts[0]!.origin?.where ?? '?'}`, String(ts.length), String(ts.reduce((n, t) => n + (t.uses?.length ?? 0), 0)), [...at].join(', ')]);
      }
      out(table(rows));
      if (limit > 0) {
        out('\nExamples (origin → uses):');
        for (const [rule, ts] of byRule) {
          const t = ts[0]!;
          const uses = (t.uses ?? []).slice(0, limit).map((u) => `${u.exchange} ${u.where}`);
          const more = (t.uses?.length ?? 0) > limit ? `, +${(t.uses?.length ?? 0) - limit} more` : '';
          out(`  ${rule}: ${t.origin?.exchange} ${t.origin?.where} → ${uses.join(', ')}${more}${t.session ? `  [session ${t.session}]` : ''}`);
        }
      }
    }
    if (volatile.length > 0) {
      out('\nVolatile values (differ between runs; rules where replay needs them)');
      const rows = [['KIND', 'FORMAT', 'COUNT', 'ROUTE', 'WHERE', 'RULE']];
      for (const t of volatile) {
        const jwt = t.jwt ? ` (${t.jwt.alg}${t.jwt.exp !== undefined ? `, exp ${new Date(t.jwt.exp * 1000).toISOString()}` : ''})` : '';
        rows.push([t.kind ?? '-', `${t.format ?? '-'}${jwt}`, String(t.count ?? 1), t.route ?? '-', `${t.origin?.in ?? ''} ${t.origin?.where ?? ''}`.trim(), t.rule ?? '-']);
      }
      out(table(rows));
    }
    if (list.length === 0) out('No tokens: no answer value was reused by a later request, and nothing volatile was seen.');
    return 0;
  },
};
