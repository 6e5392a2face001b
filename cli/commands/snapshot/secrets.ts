/** `retap snapshot secrets SNAPSHOT`: the redacted credentials a replay must be given. */
import type { Sub } from './sub.js';

export const SECRETS_HELP = `Usage: retap snapshot secrets SNAPSHOT [--secrets FILE] [--template] [--json]
       retap snapshot secrets SNAPSHOT --lookup [--json] < values.txt

Lists the redaction placeholders a replay of SNAPSHOT would send that no recorded answer hands
out: static client credentials (Basic, API keys, bearer tokens and cookies the client had before
the recording). A replay needs a value for each — from a secrets file (retap replay/ci --secrets
FILE, replay.secrets in retap.yaml), or RETAP_SECRET_<16 hex>=value in the environment — and
stops before sending anything when one is missing (exit 3, RETAP_SECRET_MISSING). Placeholders
that a login answer hands out are replaced by the token engine and need nothing.

  --secrets FILE   also say which ones FILE and the environment provide (exit 1 when some miss)
  --template       print a secrets file to fill in (one commented line per placeholder)
  --lookup         read values, one per line, on stdin and print the placeholder each gets —
                   computed with the redaction key of this environment (RETAP_REDACTION_KEY), so
                   use the key the capture used — and whether SNAPSHOT holds it. For a Basic
                   credential give the base64 of user:password, as it stood in the header.
  --json           machine-readable output

A secrets file is YAML, one line per placeholder (null: known, send the placeholder as is):
  REDACTED-3f2a9c0d1e4b5a6f: dXNlcjpodW50ZXIy
  REDACTED-9b8c7d6e5f4a3b2c: null
Keep it out of version control (or write it in CI from the secret store).
Details: docs/tokens-and-transforms.md ("Static client credentials").`;

interface Values {
  secrets?: string;
  template?: boolean;
  lookup?: boolean;
  json?: boolean;
}

export const secrets: Sub = {
  help: SECRETS_HELP,
  async run(argv) {
    const [
      { parse },
      { usageError },
      snapshots,
      sec,
      { createRedactor },
      { rulesFor },
      { json, out, table },
    ] = await Promise.all([
      import('../../args.js'),
      import('../../../core/errors.js'),
      import('../../../snapshots/index.js'),
      import('../../../snapshots/index.js'),
      import('../../../snapshots/index.js'),
      import('../../../runner/rules.js'),
      import('./sub.js'),
    ]);
    const { values, positionals } = parse<Values>(
      'snapshot secrets',
      argv,
      {
        secrets: { type: 'string' },
        template: { type: 'boolean' },
        lookup: { type: 'boolean' },
        json: { type: 'boolean' },
      },
      true,
    );
    if (positionals.length !== 1) throw usageError('retap snapshot secrets: give one SNAPSHOT');
    if (values.lookup && (values.template || values.secrets))
      throw usageError('retap snapshot secrets: --lookup goes alone');
    const snap = await snapshots.openSnapshot(positionals[0]!);
    const all = [];
    for await (const ex of snap.exchanges()) all.push(ex);

    if (values.lookup) {
      let text = '';
      for await (const chunk of process.stdin) text += chunk.toString();
      const wanted = text.split(/\r?\n/).filter((l) => l !== '');
      const r = createRedactor(undefined);
      const present = new Set<string>();
      const { PLACEHOLDER_IN_TEXT } = await import('../../../snapshots/index.js');
      for await (const line of snap.lines())
        for (const m of line.text.matchAll(PLACEHOLDER_IN_TEXT)) present.add(m[0]);
      const rows = wanted.map((v, i) => ({
        line: i + 1,
        placeholder: r.placeholderOf(v),
        inSnapshot: present.has(r.placeholderOf(v)),
      }));
      const keyed = snap.manifest.redaction.keyed;
      const keyHere = (process.env.RETAP_REDACTION_KEY ?? '') !== '';
      if (values.json) json({ keyed, keyHere, values: rows });
      else {
        if (keyed !== keyHere) {
          process.stderr.write(
            keyed
              ? 'retap snapshot secrets: the snapshot was redacted with a key but RETAP_REDACTION_KEY is not set here: placeholders will not match\n'
              : 'retap snapshot secrets: RETAP_REDACTION_KEY is set here but the snapshot was redacted without a key: placeholders will not match\n',
          );
        }
        out(
          table([
            ['line', 'placeholder', 'in snapshot'],
            ...rows.map((r2) => [String(r2.line), r2.placeholder, r2.inSnapshot ? 'yes' : 'no']),
          ]),
        );
      }
      return 0;
    }

    const rules = await rulesFor(snap, all);
    const given = await sec.loadSecrets({ file: values.secrets });
    const inbound = all
      .filter((e) => e.direction === 'inbound')
      .sort((a, b) => a.timing.startUs - b.timing.startUs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const needs = sec.secretNeeds(inbound, rules, given);
    const missing = needs.filter((n) => n.state === 'missing').length;
    if (values.template) {
      const lines = [
        '# retap secrets: placeholder → value of each static client credential (keep this file out of git)',
      ];
      for (const n of needs) {
        if (n.state === 'rejected') continue;
        lines.push(
          `# ${[...new Set(n.uses.map((u) => u.where))].join(', ')} — ${n.count} request(s), e.g. ${n.uses
            .slice(0, 2)
            .map((u) => u.route)
            .join('; ')}`,
        );
        lines.push(`${n.placeholder}: ${n.state === 'acknowledged' ? 'null' : '""'}`);
      }
      out(lines.join('\n'));
      return 0;
    }
    if (values.json) json({ snapshot: snap.path, keyed: snap.manifest.redaction.keyed, needs });
    else if (needs.length === 0) out(`${snap.path}: a replay sends no placeholder that needs a value`);
    else {
      const rows = [['placeholder', 'state', 'where', 'requests', 'e.g.']];
      for (const n of needs) {
        rows.push([
          n.placeholder,
          n.state,
          [...new Set(n.uses.map((u) => u.where))].join(', '),
          String(n.count),
          `${n.uses[0]!.exchange} ${n.uses[0]!.route}`,
        ]);
      }
      out(table(rows));
      if (missing > 0)
        out(
          `\n${missing} without a value: give them with --secrets FILE or RETAP_SECRET_<16 hex>=value (--template prints a file to fill in)`,
        );
    }
    return values.secrets !== undefined && missing > 0 ? 1 : 0;
  },
};
