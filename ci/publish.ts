/**
 * Publishing a judged replay to the CI system that runs it: the step summary (Markdown), the
 * step's outputs and the annotations, each when GitHub Actions (or a test posing as it) asks for
 * it and the settings allow it.
 */
import type { Verdict } from '../assertions/index.js';
import {
  type Annotation,
  appendSummary,
  formatAnnotation,
  type GithubEnv,
  verdictAnnotations,
  workspacePath,
  writeOutputs,
} from './github.js';
import type { ReportFormat } from './reports/index.js';
import { renderMarkdown } from './reports/markdown.js';

/** What a judged run left: its verdict, the gate's outcome, the report files and the results file. */
export interface Published {
  verdict: Verdict;
  exitCode: number;
  status: string;
  reports: Partial<Record<ReportFormat, string>>;
  results: string;
}

export interface PublishOptions {
  stepSummary: boolean;
  annotations: boolean;
  maxAnnotations: number;
  /** The retap.yaml the run read, named in annotations (made relative to the workspace). */
  configFile?: string | undefined;
}

/** Step summary, outputs and annotations (`annotations` replaces the verdict's own). */
export async function publish(
  o: Published,
  gh: GithubEnv,
  opts: PublishOptions,
  annotations?: Annotation[],
): Promise<void> {
  if (gh.summary && opts.stepSummary) await appendSummary(gh.summary, renderMarkdown(o.verdict));
  if (gh.output) {
    await writeOutputs(gh.output, {
      verdict: o.status,
      'exit-code': String(o.exitCode),
      junit: o.reports.junit ?? '',
      summary: o.reports.markdown ?? '',
      html: o.reports.html ?? '',
      json: o.reports.json ?? '',
      results: o.results,
    });
  }
  if (gh.actions && opts.annotations) {
    const file = opts.configFile ? workspacePath(opts.configFile, gh.workspace) : undefined;
    const list =
      annotations ?? verdictAnnotations(o.verdict, { ...(file ? { file } : {}), max: opts.maxAnnotations });
    for (const a of list) process.stdout.write(`${formatAnnotation(a)}\n`);
  }
}
