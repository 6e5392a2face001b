/** Report renderers by format name. */

import type { Verdict } from '../../assertions/index.js';
import type { ReplayResults } from '../../core/results.js';
import { renderHtml } from './html.js';
import { renderJson, renderJsonChunks } from './json.js';
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

/**
 * The report in pieces, for writing to a file or a stream: JSON item by item (a verdict of any
 * size), the other formats as one piece (the HTML lists a bounded number of requests).
 */
export function renderChunks(format: ReportFormat, v: Verdict, results?: ReplayResults): Iterable<string> {
  return format === 'json' ? renderJsonChunks(v) : [render(format, v, results)];
}

export { renderHtml, renderJson, renderJsonChunks, renderJunit, renderMarkdown };
