/**
 * GitHub Actions integration: step outputs ($GITHUB_OUTPUT), the job summary
 * ($GITHUB_STEP_SUMMARY) and `::error` workflow commands that become annotations.
 * Everything is plain text in files or on stdout, so it also works under `sudo -E`.
 */
import { randomBytes } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import { isAbsolute, relative } from 'node:path';
import { describeRoute, type Verdict } from '../assertions/index.js';

export interface GithubEnv {
  /** Running inside GitHub Actions (GITHUB_ACTIONS=true). */
  actions: boolean;
  output?: string;
  summary?: string;
  workspace?: string;
}

export function githubEnv(env: NodeJS.ProcessEnv = process.env): GithubEnv {
  const g: GithubEnv = { actions: env.GITHUB_ACTIONS === 'true' };
  if (env.GITHUB_OUTPUT) g.output = env.GITHUB_OUTPUT;
  if (env.GITHUB_STEP_SUMMARY) g.summary = env.GITHUB_STEP_SUMMARY;
  if (env.GITHUB_WORKSPACE) g.workspace = env.GITHUB_WORKSPACE;
  return g;
}

/** Message text of a workflow command: %, CR and LF are escaped. */
export function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** Property values (file=, title=) additionally escape ':' and ','. */
export function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

export interface Annotation {
  level: 'error' | 'warning' | 'notice';
  title: string;
  message: string;
  file?: string;
  line?: number;
}

export function formatAnnotation(a: Annotation): string {
  const props: string[] = [];
  if (a.file) props.push(`file=${escapeProperty(a.file)}`);
  if (a.line !== undefined) props.push(`line=${a.line}`);
  props.push(`title=${escapeProperty(a.title)}`);
  return `::${a.level} ${props.join(',')}::${escapeData(a.message)}`;
}

/** A path as GitHub wants it in `file=`: relative to the workspace when inside it. */
export function workspacePath(path: string, workspace: string | undefined): string {
  if (!workspace || !isAbsolute(path)) return path;
  const rel = relative(workspace, path);
  return rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

/**
 * One annotation for a replay that did not reproduce the recording, one per failing route (with
 * its first counted differences), per failed budget and per infrastructure error, at most `max` in all (GitHub shows ten errors per step).
 */
export function verdictAnnotations(v: Verdict, opts: { file?: string; max?: number } = {}): Annotation[] {
  const out: Annotation[] = [];
  const at = opts.file ? { file: opts.file } : {};
  for (const e of v.errors) {
    out.push({
      level: 'error',
      title: `retap: infrastructure error (${e.run})`,
      message: `${e.code}: ${e.message}`,
      ...at,
    });
  }
  if (!v.validity.reproduced) {
    const lines = v.validity.routes
      .filter((r) => !r.reproduced)
      .slice(0, 5)
      .map((r) => `${r.route}: ${describeRoute(r)}${r.causes[0] ? ` — likely ${r.causes[0].summary}` : ''}`);
    out.push({
      level: 'error',
      title: 'retap: the replay did not reproduce the recording',
      message: [v.validity.message ?? '', ...lines, ...(v.validity.note ? [v.validity.note] : [])].join('\n'),
      ...at,
    });
  }
  for (const r of v.routes) {
    if (r.failed === 0 && r.errors === 0) continue;
    const items = v.items.filter((i) => i.route === r.route && i.status !== 'pass');
    // one line per kind of difference, with how many requests show it and one example
    const groups = new Map<string, { line: string; requests: Set<string> }>();
    for (const it of items) {
      const found =
        it.status === 'error'
          ? [{ key: `error ${it.error ?? ''}`, line: `not judged: ${it.error ?? 'no answer'}` }]
          : it.diffs
              .filter((d) => !d.noise)
              .map((d) => ({ key: `${d.rating} ${d.kind} ${d.path}`, line: `${d.rating}: ${d.message}` }));
      for (const f of found) {
        const g = groups.get(f.key) ?? { line: f.line, requests: new Set<string>() };
        g.requests.add(it.id);
        groups.set(f.key, g);
      }
    }
    const all = [...groups.values()].sort((a, b) => b.requests.size - a.requests.size);
    const shown = all.slice(0, 5).map((g) => `${g.line} (${g.requests.size} of ${r.items})`);
    if (all.length > shown.length) shown.push(`… and ${all.length - shown.length} more kinds of difference`);
    out.push({
      level: 'error',
      title: `retap: ${r.route}`,
      message: `${r.failed + r.errors} of ${r.items} requests fail\n${shown.join('\n')}`,
      ...at,
    });
  }
  for (const b of v.budgets) {
    if (b.status !== 'fail') continue;
    out.push({ level: 'error', title: `retap budget: ${b.name}`, message: b.message, ...at });
  }
  if (v.status === 'pass' && v.summary.budgetsNotJudged > 0) {
    out.push({
      level: 'warning',
      title: 'retap: budgets not judged',
      message: `${v.summary.budgetsNotJudged} budget(s) had too few samples to be judged`,
      ...at,
    });
  }
  const max = opts.max ?? 10;
  if (out.length > max) {
    const kept = out.slice(0, Math.max(0, max - 1));
    if (max > 0)
      kept.push({
        level: 'error',
        title: 'retap: more failures',
        message: `${out.length - kept.length} more failures: see the job summary and the reports`,
        ...at,
      });
    return kept;
  }
  return out;
}

/** Appends `name=value` outputs; multi-line values use a random heredoc delimiter. */
export async function writeOutputs(file: string, values: Record<string, string>): Promise<void> {
  let text = '';
  for (const [k, v] of Object.entries(values)) {
    if (!/[\r\n]/.test(v)) text += `${k}=${v}\n`;
    else {
      const delim = `retap_${randomBytes(8).toString('hex')}`;
      text += `${k}<<${delim}\n${v}\n${delim}\n`;
    }
  }
  await appendFile(file, text);
}

export async function appendSummary(file: string, markdown: string): Promise<void> {
  await appendFile(file, markdown.endsWith('\n') ? `${markdown}\n` : `${markdown}\n\n`);
}
