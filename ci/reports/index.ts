/** Report renderers by format name. */
import type { ReplayResults } from '../../core/results.js';
import type { Verdict } from '../../assertions/index.js';
import { renderHtml } from './html.js';
import { renderJson } from './json.js';
import { renderJunit } from './junit.js';
import { renderMarkdown } from './markdown.js';

export const FORMATS = ['junit', 'markdown', 'html', 'json'] as const;
export type ReportFormat = (typeof FORMATS)[number];

export const EXTENSIONS: Record<ReportFormat, string> = {
  junit: 'junit.xml',
  markdown: 'md',
  html: 'html',
  json: 'json',
};

export function render(format: ReportFormat, v: Verdict, results?: ReplayResults): string {
  switch (format) {
    case 'junit':
      return renderJunit(v);
    case 'markdown':
      return renderMarkdown(v);
    case 'html':
      return renderHtml(v, results ? { results } : {});
    case 'json':
      return renderJson(v);
  }
}

export { renderHtml, renderJson, renderJunit, renderMarkdown };
