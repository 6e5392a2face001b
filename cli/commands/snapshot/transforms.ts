/** `retap snapshot transforms SNAPSHOT [--check]`: the rules, and a dry run over the recording. */
import type { Sub } from './sub.js';

export const TRANSFORMS_HELP = `Usage: retap snapshot transforms SNAPSHOT [--check] [--rules FILE | --discover] [--samples N] [--json]

Lists the transform rules of a version (transforms.yaml): what each extracts, how it changes the
value, and where it puts it at replay (requests) or in mocked answers.
  --check        validate the rules and dry-run them over the recorded traffic: for each rule,
                 how many exchanges it changes and before → after samples. Values the build
                 will give at replay show as <live:RULE#N>. Exit 1 when the rules are invalid.
  --rules FILE   use this transforms.yaml instead of the version's (try an edit before saving it)
  --discover     use the rules token discovery would write for this version
  --samples N    samples per rule (default 3)
  --json         machine-readable output
Details: docs/tokens-and-transforms.md.`;

interface Values {
  check?: boolean;
  rules?: string;
  discover?: boolean;
  samples?: string;
  json?: boolean;
}

function short(s: string, n = 72): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export const transforms: Sub = {
  help: TRANSFORMS_HELP,
  async run(argv) {
    const [{ parse, parseIntFlag }, { usageError, isRetapError, ErrorCodes, formatError }, snapshots, tk, tf, { checkTransforms }, { json, out, table }, fs, path, { toYaml }] =
      await Promise.all([
        import('../../args.js'),
        import('../../../core/errors.js'),
        import('../../../snapshots/index.js'),
        import('../../../snapshots/index.js'),
        import('../../../snapshots/index.js'),
        import('../../../snapshots/index.js'),
        import('./sub.js'),
        import('node:fs/promises'),
        import('node:path'),
        import('../../../snapshots/index.js'),
      ]);
    const { values, positionals } = parse<Values>(
      'snapshot transforms',
      argv,
      { check: { type: 'boolean' }, rules: { type: 'string' }, discover: { type: 'boolean' }, samples: { type: 'string' }, json: { type: 'boolean' } },
      true,
    );
    if (positionals.length !== 1) throw usageError('retap snapshot transforms: give one SNAPSHOT');
    if (values.rules && values.discover) throw usageError('retap snapshot transforms: --rules and --discover exclude each other');
    const samples = values.samples === undefined ? 3 : parseIntFlag(values.samples, '--samples', 0, 100);
    const snap = await snapshots.openSnapshot(positionals[0]!);

    let text: string;
    let label: string;
    let tokens = await snap.tokens();
    if (values.rules) {
      text = await fs.readFile(values.rules, 'utf8');
      label = values.rules;
    } else if (values.discover) {
      const e = tk.emitFiles(await tk.discoverTokens(snap.exchanges()));
      text = toYaml(e.transforms);
      tokens = e.tokens;
      label = 'transforms.yaml (discovered)';
    } else {
      text = await fs.readFile(path.join(snap.path, snap.manifest.files.transforms.path), 'utf8');
      label = snap.manifest.files.transforms.path;
    }

    let compiled: ReturnType<typeof tf.loadTransformsText>;
    try {
      compiled = tf.loadTransformsText(text, { file: label });
    } catch (e) {
      if (values.check && isRetapError(e) && e.code === ErrorCodes.SNAPSHOT_INVALID) {
        if (values.json) json({ valid: false, error: e.toJSON() });
        else process.stderr.write(`${formatError(e)}\n`);
        return 1;
      }
      throw e;
    }
    const rules = compiled.file.rules as unknown as import('../../../snapshots/index.js').Rule[];

    if (!values.check) {
      if (values.json) {
        json({ snapshot: snap.path, file: label, rules });
        return 0;
      }
      out(`${label}: ${rules.length} rule(s)${rules.length === 0 ? " — run 'retap snapshot tokens SNAPSHOT --write' to add the discovered ones" : ''}`);
      for (const r of rules) {
        out(`\n${r.id}${r.enabled === false ? ' (disabled)' : ''}${r.description ? `\n  ${r.description}` : ''}`);
        if (r.match) out(`  match:   ${Object.entries(r.match).map(([k, v]) => `${k}=${v}`).join(' ')}`);
        for (const x of r.extract ?? []) out(`  extract: ${x.from} ${x.in ?? 'response'} ${x.name ?? x.path ?? x.pattern ?? x.claim ?? (x.segment !== undefined ? `segment ${x.segment}` : '')} → ${x.as}`);
        for (const s of r.transform ?? []) out(`  step:    ${s.op}${s.var ? ` ${s.var}` : ''}${s.by ? ` by ${s.by}` : ''}${s.with !== undefined ? ` with ${s.with}` : ''}`);
        for (const j of r.inject ?? []) out(`  inject:  ${j.to} ${j.in ?? 'request'} ${j.name ?? j.path ?? j.pattern ?? (j.segment !== undefined ? `segment ${j.segment}` : '')} = ${j.value} (${j.mode ?? 'set'})${j.match ? ` where ${Object.entries(j.match).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`);
      }
      return 0;
    }

    const report = await checkTransforms(snap.exchanges(), compiled.rules, tokens, {
      samples,
      ...(snap.manifest.timeRange ? { recordedStartUs: snap.manifest.timeRange.firstStartUs } : {}),
    });
    if (values.json) {
      json({ valid: true, snapshot: snap.path, file: label, ...report });
      return 0;
    }
    out(`${label}: ${rules.length} rule(s) valid; dry run over ${report.exchanges.inbound} inbound and ${report.exchanges.outbound} outbound exchanges`);
    out(table([['RULE', 'ENABLED', 'EXCHANGES', 'CHANGES'], ...report.rules.map((r) => [r.rule, r.enabled ? 'yes' : 'no', String(r.exchanges), String(r.changes)])]));
    for (const r of report.rules) {
      if (r.samples.length === 0) continue;
      out(`\n${r.rule}:`);
      for (const c of r.samples) {
        out(`  ${c.exchange} ${c.side} ${c.where}\n    before: ${short(c.before)}\n    after:  ${short(c.after)}`);
      }
    }
    if (report.warnings.length > 0) {
      out(`\nWarnings (${report.warnings.length}):`);
      for (const w of report.warnings.slice(0, 20)) out(`  ${w.message}`);
    }
    for (const n of report.notes.slice(0, 20)) out(`  note: ${n}`);
    return 0;
  },
};
