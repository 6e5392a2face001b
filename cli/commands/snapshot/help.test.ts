/** docs/cli.md's `retap snapshot` section names every subcommand and every option its --help has. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import command from '../snapshot.js';

const doc = readFileSync(resolve(import.meta.dirname, '../../../docs/cli.md'), 'utf8');
const section = doc.slice(doc.indexOf('## retap snapshot'), doc.indexOf('## retap replay'));
const listed = command.help.slice(
  command.help.indexOf('Subcommands:'),
  command.help.indexOf('\n\n', command.help.indexOf('Subcommands:')),
);
const subs = [...listed.matchAll(/^ {2}([a-z]+) +\S/gm)].map((m) => m[1]!);

describe('docs/cli.md: retap snapshot', () => {
  it('lists the subcommands the command has', () => {
    expect(subs.length).toBeGreaterThanOrEqual(11);
    for (const s of subs) expect(section, `subcommand ${s}`).toMatch(new RegExp(`\`${s}[ \`]`));
  });

  it.each(subs)('names every option of %s', async (name) => {
    const { default: cmd } = await import('../snapshot.js');
    const chunks: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((c: string) => chunks.push(String(c)) > 0) as typeof process.stdout.write;
    try {
      await cmd.run([name, '--help']);
    } finally {
      process.stdout.write = write;
    }
    const flags = new Set([...chunks.join('').matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((m) => m[0]));
    expect(flags.size).toBeGreaterThan(0);
    for (const f of flags) if (f !== '--help') expect(section, `${name} ${f}`).toContain(f);
  });
});
