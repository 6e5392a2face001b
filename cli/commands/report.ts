/**
 * `retap report RESULTS`: evaluate a results.json (assertions, noise, budgets) and render it as
 * JUnit, Markdown, HTML or JSON. The exit code is the gate's (0/1/2/3) unless --exit-zero.
 */
import { existsSync, statSync } from 'node:fs';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { readSnapshotTokens } from '../../assertions/config-file.js';
import { type EvaluateConfig, parseBudget, type Rating } from '../../assertions/index.js';
import { loadCiConfig } from '../../ci/config.js';
import { judge } from '../../ci/judge.js';
import { EXTENSIONS, FORMATS, type ReportFormat, renderChunks } from '../../ci/reports/index.js';
import { renderMarkdown } from '../../ci/reports/markdown.js';
import { ExitCodes, isRetapError, usageError } from '../../core/errors.js';
import { loadProtoDirs } from '../../core/protos.js';
import { readResults } from '../../snapshots/index.js';
import { many, parse } from '../args.js';
import type { Command } from '../command.js';

const help = `Usage: retap report RESULTS [--format F[,F…]] [-o FILE|DIR] [options]

Judge a replay's results (results.json or the directory holding it) and write reports:
differences rated breaking/warning after noise cancellation, latency/error/mock budgets,
mock misses and capture drops.

Options:
  --format F         junit | markdown | html | json; repeat or comma-separate for several
                     (default markdown)
  -o, --out PATH     file for one format; a directory for several (report.junit.xml,
                     report.md, report.html, report.json). Default: stdout (one format only)
  --budget EXPR      add a budget, e.g. 'p95 < 250ms', 'GET /orders/{id}: p99 < +10%',
                     'errors < 1%', 'mocks >= 100%'; repeatable (adds to retap.yaml's)
  --config FILE      settings file (default ./retap.yaml when present; section assertions:)
  --fail-on R        breaking | warning (default warning: any difference beyond noise fails)
  --warn-only WHAT   assertions | budgets: report those failures without failing; repeatable
  --no-tokens        do not read the snapshot's discovered tokens
  --proto DIR        .proto files of gRPC services (folder, searched recursively; repeatable;
                     also assertions.proto): messages compared with field names and types
                     ($.items[3].price). Without, the build's own schema when the replay got it
                     over server reflection (kept in results.json); else by field number (#2.3)
  --no-step-summary  do not append the Markdown summary to $GITHUB_STEP_SUMMARY
  --exit-zero        exit 0 whatever the verdict (reports still written)
  --json             print { verdict, exitCode, summary, reports } as JSON on stdout (with -o);
                     without -o, the same as --format json
  -h, --help         this text

When $GITHUB_STEP_SUMMARY is set, the Markdown summary is appended to it.

Exit codes: 0 pass, 1 assertion failures, 2 budget failures (assertions win when both),
3 infrastructure error (build did not start, capture or replay failed) or a replay that did not
reproduce the recording (replay validity, docs/assertions.md), 64 bad usage.

Examples:
  retap report out/results.json --format junit -o junit.xml
  retap report out --format junit,markdown,html -o reports/ --budget 'p95 < +10%'`;

interface Flags {
  format?: string[];
  out?: string;
  budget?: string[];
  config?: string;
  'fail-on'?: string;
  'warn-only'?: string[];
  'no-tokens'?: boolean;
  proto?: string[];
  'no-step-summary'?: boolean;
  'exit-zero'?: boolean;
  json?: boolean;
}

/** Loads the .proto folders of --proto (relative to here) and assertions.proto into `config.protos`. */
export function withProtos(config: EvaluateConfig, flagDirs: string[]): void {
  const dirs = [...flagDirs.map((d) => resolve(d)), ...(config.protoDirs ?? [])];
  if (dirs.length > 0) config.protos = loadProtoDirs(dirs);
}

function formatsOf(values: string[]): ReportFormat[] {
  const list = values
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) return ['markdown'];
  for (const f of list) {
    if (!(FORMATS as readonly string[]).includes(f))
      throw usageError(`--format: unknown format '${f}'`, `Use one of: ${FORMATS.join(', ')}.`);
  }
  return [...new Set(list)] as ReportFormat[];
}

const command: Command = {
  name: 'report',
  summary: 'Render results as JUnit, Markdown, HTML or JSON',
  help,
  async run(argv) {
    const { values, positionals } = parse<Flags>(
      'report',
      argv,
      {
        format: { type: 'string', multiple: true },
        out: { type: 'string', short: 'o' },
        budget: { type: 'string', multiple: true },
        config: { type: 'string' },
        'fail-on': { type: 'string' },
        'warn-only': { type: 'string', multiple: true },
        'no-tokens': { type: 'boolean' },
        proto: { type: 'string', multiple: true },
        'no-step-summary': { type: 'boolean' },
        'exit-zero': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      true,
    );
    if (positionals.length !== 1)
      throw usageError('retap report: give exactly one RESULTS file or directory');
    const formats = formatsOf(
      many(values.format).length === 0 && values.json && values.out === undefined
        ? ['json']
        : many(values.format),
    );
    const failOn = values['fail-on'];
    if (failOn !== undefined && failOn !== 'breaking' && failOn !== 'warning') {
      throw usageError(`--fail-on: '${failOn}' must be breaking or warning`);
    }
    const warnOnly = many(values['warn-only']);
    for (const w of warnOnly)
      if (w !== 'assertions' && w !== 'budgets')
        throw usageError(`--warn-only: '${w}' must be assertions or budgets`);
    const budgets = many(values.budget).map((b) => {
      try {
        return parseBudget(b, '--budget');
      } catch (e) {
        throw isRetapError(e) ? usageError(e.message, e.hint) : e;
      }
    });

    const results = await readResults(positionals[0] as string);
    const config = (await loadCiConfig(values.config)).assertions;
    config.budgets.push(...budgets);
    if (failOn) config.failOn = failOn as Rating;
    withProtos(config, many(values.proto));
    if (!values['no-tokens'])
      config.tokens = [...config.tokens, ...(await readSnapshotTokens(results.snapshot.path))];
    const outcome = judge(results, config, { warnOnly: warnOnly as Array<'assertions' | 'budgets'> });
    const verdict = outcome.verdict;

    const out = values.out;
    const written: Partial<Record<ReportFormat, string>> = {};
    if (out === undefined || out === '-') {
      if (formats.length > 1)
        throw usageError(
          'retap report: several formats need -o DIR',
          'Give a directory with -o, e.g. -o reports/.',
        );
      for (const chunk of renderChunks(formats[0] as ReportFormat, verdict, results))
        process.stdout.write(chunk);
    } else {
      const target = resolve(out);
      const asDir =
        formats.length > 1 || out.endsWith('/') || (existsSync(target) && statSync(target).isDirectory());
      if (asDir) await mkdir(target, { recursive: true });
      else await mkdir(dirname(target), { recursive: true });
      for (const f of formats) {
        const path = asDir ? join(target, `report.${EXTENSIONS[f]}`) : target;
        await writeFile(path, renderChunks(f, verdict, results));
        written[f] = path;
        process.stderr.write(`retap report: wrote ${path}\n`);
      }
      if (values.json)
        process.stdout.write(
          `${JSON.stringify({ verdict: outcome.status, exitCode: outcome.exitCode, summary: verdict.summary, reports: written }, null, 2)}\n`,
        );
    }
    const summary = process.env.GITHUB_STEP_SUMMARY;
    if (summary && !values['no-step-summary']) await appendFile(summary, `${renderMarkdown(verdict)}\n`);
    process.stderr.write(`${outcome.line}\n`);
    return values['exit-zero'] ? ExitCodes.OK : outcome.exitCode;
  },
};

export default command;
