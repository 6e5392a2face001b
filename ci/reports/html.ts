/**
 * Self-contained HTML report: inline CSS, inline script, inline SVG histograms, no external URL
 * (a Content-Security-Policy forbids any fetch). Verdict, budgets, per-route latency with
 * histograms, a filterable list of exchanges whose rows open side-by-side diffs (and, when the
 * results are given, the recorded and candidate bodies side by side), and the noise decisions.
 */

import type { Difference, ItemVerdict, RouteSummary, Verdict } from '../../assertions/index.js';
import type { ReplayResults } from '../../core/results.js';
import { EXIT_CODE_MEANINGS, verdictTitle } from '../gate.js';
import {
  budgetAllowed,
  budgetMeasured,
  counted,
  describeRoute,
  ms,
  pct,
  validityLine,
  value,
} from './format.js';

const esc = (s: unknown): string =>
  String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');

const CSS = `
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--mute:#6e7781;--line:#d0d7de;--bg:#f6f8fa;font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:14px;color:#1f2328}
body{margin:0 auto;max-width:1200px;padding:16px 24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
header{border-radius:8px;padding:14px 18px;color:#fff}
header.pass{background:var(--ok)}header.fail-assertions,header.error{background:var(--bad)}header.fail-budgets{background:var(--warn)}
header p{margin:4px 0 0}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
pre{margin:0;white-space:pre-wrap;word-break:break-all;background:var(--bg);padding:8px;border-radius:6px;max-height:420px;overflow:auto}
.badge{display:inline-block;white-space:nowrap;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600;color:#fff}
.b-pass{background:var(--ok)}.b-fail{background:var(--bad)}.b-error{background:#8250df}.b-not-judged{background:var(--mute)}
.breaking{color:var(--bad);font-weight:600}.warning{color:var(--warn);font-weight:600}
.routes{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 12px}.card h3{margin:0 0 6px;font-size:14px}
.stats{font-size:12.5px;color:var(--mute);margin-bottom:6px}
.filters{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin-bottom:8px}
.filters input[type=search]{flex:1;min-width:220px;padding:6px 8px;border:1px solid var(--line);border-radius:6px}
.filters button{border:1px solid var(--line);background:#fff;border-radius:6px;padding:5px 10px;cursor:pointer}
.filters button.on{background:#0969da;color:#fff;border-color:#0969da}
tr.ex{cursor:pointer}tr.ex:hover{background:var(--bg)}tr.detail>td{background:#fff;padding:10px 8px 16px}
tr.noise td{color:var(--mute);text-decoration:line-through}body:not(.show-noise) tr.noise{display:none}
.side{display:grid;grid-template-columns:1fr 1fr;gap:10px;margin-top:10px}.side h4{margin:0 0 4px;font-size:12.5px}
.muted{color:var(--mute)}svg text{font-size:10px;fill:#57606a}svg rect.bar{fill:#0969da}
`;

const SCRIPT = `
(function(){
  var rows=[].slice.call(document.querySelectorAll('tr.ex'));
  var q=document.getElementById('q'),shown=document.getElementById('shown'),noise=document.getElementById('show-noise');
  var filter='all';
  function apply(){
    var text=q.value.trim().toLowerCase(),n=0;
    rows.forEach(function(r){
      var ok=(filter==='all'||r.getAttribute('data-status')===filter)&&(!text||r.getAttribute('data-text').indexOf(text)!==-1);
      r.hidden=!ok;var d=r.nextElementSibling;if(!ok&&d)d.hidden=true;if(ok)n++;
    });
    shown.textContent=n+' of '+rows.length+' shown';
  }
  [].slice.call(document.querySelectorAll('.filters button')).forEach(function(b){
    b.addEventListener('click',function(){
      filter=b.getAttribute('data-filter');
      [].slice.call(document.querySelectorAll('.filters button')).forEach(function(x){x.classList.toggle('on',x===b)});
      apply();
    });
  });
  q.addEventListener('input',apply);
  noise.addEventListener('change',function(){document.body.classList.toggle('show-noise',noise.checked)});
  rows.forEach(function(r){r.addEventListener('click',function(){var d=r.nextElementSibling;d.hidden=!d.hidden})});
  apply();
})();
`;

function histogramSvg(r: RouteSummary): string {
  const h = r.histogram;
  if (!h || h.counts.length === 0) return '<p class="muted">no server-side timings</p>';
  const w = 340;
  const ht = 110;
  const pad = 18;
  const max = Math.max(...h.counts);
  const bw = (w - 8) / h.counts.length;
  const bars = h.counts
    .map((c, i) => {
      const bh = max === 0 ? 0 : ((ht - pad - 12) * c) / max;
      const x = 4 + i * bw;
      const bound = h.bounds[i] as number;
      const label = bound >= 1e9 ? '>10s' : bound >= 1000 ? `${bound / 1000}s` : `${bound}`;
      return (
        `<rect class="bar" x="${x.toFixed(1)}" y="${(ht - pad - bh).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${bh.toFixed(1)}"><title>≤ ${esc(label)} ms: ${c}</title></rect>` +
        (c > 0
          ? `<text x="${(x + bw / 2 - 1).toFixed(1)}" y="${(ht - pad - bh - 2).toFixed(1)}" text-anchor="middle">${c}</text>`
          : '') +
        `<text x="${(x + bw / 2 - 1).toFixed(1)}" y="${ht - 4}" text-anchor="middle">${esc(label)}</text>`
      );
    })
    .join('');
  return `<svg role="img" aria-label="latency histogram of ${esc(r.route)} (ms)" width="${w}" height="${ht}" viewBox="0 0 ${w} ${ht}">${bars}</svg>`;
}

function diffRow(d: Difference, withBaseline: boolean): string {
  return (
    `<tr class="${d.noise ? 'noise' : ''}"><td><code>${esc(d.path)}</code></td><td>${esc(d.kind)}</td>` +
    `<td><code>${esc(value(d.recorded))}</code></td>` +
    (withBaseline ? `<td><code>${esc(value(d.baseline))}</code></td>` : '') +
    `<td><code>${esc(value(d.candidate))}</code></td>` +
    `<td class="${d.rating}">${d.noise ? `noise: ${esc(d.noise.reason)}` : esc(d.rating)}</td></tr>`
  );
}

function bodyText(bytes: Uint8Array | undefined): string {
  if (!bytes || bytes.length === 0) return '(empty)';
  const text = new TextDecoder().decode(bytes.subarray(0, 8192));
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return bytes.length > 8192 ? `${text}\n… (${bytes.length} bytes)` : text;
  }
}

function detail(
  i: ItemVerdict,
  withBaseline: boolean,
  bodies?: { recorded: string; candidate: string },
): string {
  const head = `<tr><th>where</th><th>kind</th><th>recorded</th>${withBaseline ? '<th>baseline</th>' : ''}<th>candidate</th><th>rating</th></tr>`;
  const rows = i.diffs.map((d) => diffRow(d, withBaseline)).join('');
  const notes = [...(i.error ? [i.error] : []), ...(i.notes ?? [])]
    .map((n) => `<p class="muted">${esc(n)}</p>`)
    .join('');
  const side = bodies
    ? `<div class="side"><div><h4>recorded (${esc(i.recordedStatus ?? '–')})</h4><pre>${esc(bodies.recorded)}</pre></div>` +
      `<div><h4>candidate (${esc(i.candidateStatus ?? '–')})</h4><pre>${esc(bodies.candidate)}</pre></div></div>`
    : '';
  return `${notes}${i.diffs.length ? `<table class="diff">${head}${rows}</table>` : '<p class="muted">identical answers</p>'}${side}`;
}

export interface HtmlOptions {
  /** The results the verdict came from: adds recorded and candidate bodies side by side. */
  results?: ReplayResults;
  title?: string;
  /** At most this many requests listed (default HTML_LIST_MAX); the rest are counted. */
  listMax?: number;
}

/**
 * Requests the HTML report lists at most: a page stays readable and its size bounded however large
 * the run (a row carries its differences and up to 8 KiB of each body). Failures and errors are
 * listed before passes; the rest are counted under the list (report.json holds every request).
 */
export const HTML_LIST_MAX = 2000;

/** The requests to list: every non-passing one first (up to max), then passes, in verdict order. */
export function listed<T extends { status: string }>(items: T[], max: number): { shown: T[]; rest: T[] } {
  if (items.length <= max) return { shown: items, rest: [] };
  const keep = new Set<T>();
  for (const i of items) {
    if (keep.size >= max) break;
    if (i.status !== 'pass') keep.add(i);
  }
  for (const i of items) {
    if (keep.size >= max) break;
    keep.add(i);
  }
  return { shown: items.filter((i) => keep.has(i)), rest: items.filter((i) => !keep.has(i)) };
}

function notListed(rest: Array<{ status: string }>): string {
  const by = (st: string): number => rest.filter((i) => i.status === st).length;
  const parts = [
    ['passed', by('pass')],
    ['failed', by('fail')],
    ['errors', by('error')],
  ]
    .filter(([, n]) => (n as number) > 0)
    .map(([k, n]) => `${n} ${k}`);
  return `${rest.length} more requests not listed (${parts.join(', ')}): report.json holds every request; \`retap view\` browses them.`;
}

export function renderHtml(v: Verdict, opts: HtmlOptions = {}): string {
  const s = v.summary;
  const withBaseline = v.runs.some((r) => r.role === 'baseline');
  const { shown, rest } = listed(v.items, opts.listMax ?? HTML_LIST_MAX);
  const bodies = new Map<string, { recorded: string; candidate: string }>();
  if (opts.results) {
    const wanted = new Set(shown.map((i) => i.id));
    const cand = opts.results.runs.find((r) => r.role === 'candidate');
    const live = new Map((cand?.items ?? []).filter((i) => wanted.has(i.id)).map((i) => [i.id, i]));
    for (const r of opts.results.recorded) {
      if (!wanted.has(r.id)) continue;
      const it = live.get(r.id);
      const rb = r.exchange.response?.body;
      const cb = it?.live?.response?.body;
      bodies.set(r.id, {
        recorded: bodyText(rb?.decoded ?? rb?.data),
        candidate: it ? bodyText(cb ? (cb.decoded ?? cb.data) : it.client.responseBody) : '(not replayed)',
      });
    }
  }
  const what = v.snapshot.name ? ` — ${v.snapshot.name} v${v.snapshot.version}` : '';
  const title = opts.title ?? `retap: ${verdictTitle(v)}${what}`;
  const count = (st: string): number => v.items.filter((i) => i.status === st).length;

  const budgets = v.budgets.length
    ? `<table><tr><th>result</th><th>budget</th><th class="num">measured</th><th class="num">allowed</th><th class="num">samples</th><th class="num">confidence</th><th>detail</th></tr>${v.budgets
        .map(
          (b) =>
            `<tr><td><span class="badge b-${b.status}">${esc(b.status)}</span></td><td><code>${esc(b.name)}</code></td><td class="num">${esc(budgetMeasured(b))}</td>` +
            `<td class="num">${esc(budgetAllowed(b))}</td><td class="num">${b.samples}${b.referenceSamples !== undefined ? ` / ${b.referenceSamples}` : ''}</td>` +
            `<td class="num">${b.confidence === undefined ? '–' : pct(b.confidence)}</td><td>${esc(b.message)}</td></tr>`,
        )
        .join('')}</table>`
    : '<p class="muted">No budgets set.</p>';

  const routes = v.routes
    .map((r) => {
      const l = r.latency;
      return (
        `<div class="card"><h3>${esc(r.route)}</h3><div class="stats">${r.items} request${r.items === 1 ? '' : 's'} · ${r.failed} failed` +
        (l ? ` · n ${l.n} · p50 ${ms(l.p50)} · p95 ${ms(l.p95)} · p99 ${ms(l.p99)} · max ${ms(l.max)}` : '') +
        (r.recordedLatency ? ` · recorded p95 ${ms(r.recordedLatency.p95)}` : '') +
        (r.baselineLatency ? ` · baseline p95 ${ms(r.baselineLatency.p95)}` : '') +
        `</div>${histogramSvg(r)}</div>`
      );
    })
    .join('');

  const list = shown
    .map((i) => {
      const c = counted(i);
      const summary =
        i.error ??
        (c.length
          ? `${c[0]?.message}${c.length > 1 ? ` (+${c.length - 1} more)` : ''}`
          : i.diffs.length
            ? `${i.diffs.length} ignored as noise`
            : 'identical');
      const text = [i.route, i.target, i.id, i.status, ...i.diffs.map((d) => `${d.path} ${d.kind}`)]
        .join(' ')
        .toLowerCase();
      return (
        `<tr class="ex" data-status="${i.status}" data-id="${esc(i.id)}" data-text="${esc(text)}"><td><span class="badge b-${i.status}">${i.status}</span></td>` +
        `<td>${esc(i.route)}</td><td><code>${esc(i.method)} ${esc(i.target)}</code></td><td>${esc(summary)}</td>` +
        `<td class="num">${ms(i.latencyMs)}</td><td class="num">${ms(i.recordedLatencyMs)}</td></tr>` +
        `<tr class="detail" hidden><td colspan="6">${detail(i, withBaseline, bodies.get(i.id))}</td></tr>`
      );
    })
    .join('');

  const noise = v.noise.length
    ? `<table><tr><th>route</th><th>where</th><th>kind</th><th>source</th><th>reason</th><th class="num">times</th></tr>${v.noise
        .map(
          (n) =>
            `<tr><td>${esc(n.route)}</td><td><code>${esc(n.path)}</code></td><td>${esc(n.kind)}</td><td>${esc(n.source)}</td><td>${esc(n.reason)}</td><td class="num">${n.occurrences}</td></tr>`,
        )
        .join('')}</table>`
    : '<p class="muted">None.</p>';

  const val = v.validity;
  const validity = val.reproduced
    ? `<p>✅ ${esc(validityLine(v))} (reference: ${esc(val.runs.join(', '))}).</p>`
    : `<p class="breaking">${esc(val.message ?? 'the replay did not reproduce the recording')}</p>` +
      `<table><tr><th>route</th><th class="num">status class changed</th><th class="num">recorded calls made</th><th>likely cause and evidence</th></tr>${val.routes
        .filter((r) => !r.reproduced)
        .map(
          (r) =>
            `<tr><td>${esc(r.route)}</td><td class="num">${r.statusChanged}/${r.answers} (${pct(r.statusChangedShare, 0)})</td>` +
            `<td class="num">${r.callsMade}/${r.recordedCalls} (${pct(r.callsMadeShare, 0)})</td><td>${
              r.causes.length
                ? r.causes
                    .map(
                      (c) =>
                        `<strong>${esc(c.summary)}</strong><ul>${c.evidence.map((e) => `<li>${esc(e)}</li>`).join('')}</ul>`,
                    )
                    .join('')
                : esc(describeRoute(r))
            }</td></tr>`,
        )
        .join('')}</table>` +
      `<p class="muted">Thresholds (assertions.validity in retap.yaml): at most ${pct(val.thresholds.maxStatusChange, 0)} of a route's answers in another status class, at least ${pct(val.thresholds.minCallsMade, 0)} of its recorded calls made.</p>` +
      (val.note ? `<p><em>${esc(val.note)}</em></p>` : '');

  const c = v.capture;
  const misses = v.mocks.misses
    .map(
      (m) =>
        `<li><code>${esc(`${m.method} ${m.host} ${m.target}`)}</code> during <code>${esc(m.during ?? '?')}</code> (${esc(m.run)}): ${esc(m.reason)}${m.closest ? `; closest: ${esc(m.closest)}` : ''}</li>`,
    )
    .join('');
  const problems = [
    ...v.errors.map((e) => `<li class="breaking">${esc(e.run)}: ${esc(e.code)} ${esc(e.message)}</li>`),
    ...v.warnings.map((w) => `<li>⚠️ ${esc(w.code)}: ${esc(w.message)}</li>`),
  ].join('');

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title><style>${CSS}</style></head>
<body>
<header class="${v.status}"><h1>${esc(title)}</h1>
<p>${s.passed} of ${s.items} requests pass · ${s.breaking} breaking · ${s.warnings} warnings · ${s.ignored} ignored as noise · budgets ${v.budgets.length - s.budgetsFailed - s.budgetsNotJudged}/${v.budgets.length} pass · mocks ${v.mocks.matched}/${Math.max(v.mocks.calls, v.mocks.recordedCalls)}</p>
<p>exit code ${v.exitCode}: ${esc(EXIT_CODE_MEANINGS[v.exitCode] ?? '')} · snapshot ${esc(v.snapshot.name)} v${v.snapshot.version} <code>${esc(v.snapshot.hash)}</code> · runs ${esc(v.runs.map((r) => r.label).join(', '))} · ${esc(v.createdAt)}</p></header>
${problems ? `<ul>${problems}</ul>` : ''}
<h2>Replay validity</h2>${validity}
<h2>Budgets</h2>${budgets}
<h2>Latency by route (server-side, eBPF; ms)</h2><div class="routes">${routes}</div>
<h2>Exchanges</h2>
<div class="filters"><input id="q" type="search" placeholder="filter: route, target, field path…" aria-label="filter">
<button type="button" data-filter="all" class="on">all (${v.items.length})</button><button type="button" data-filter="fail">failed (${count('fail')})</button>
<button type="button" data-filter="pass">passed (${count('pass')})</button><button type="button" data-filter="error">errors (${count('error')})</button>
<label><input type="checkbox" id="show-noise"> show noise</label><span id="shown" class="muted"></span></div>
<table id="exchanges"><thead><tr><th></th><th>route</th><th>request</th><th>difference</th><th class="num">latency</th><th class="num">recorded</th></tr></thead><tbody>${list}</tbody></table>${rest.length ? `<p class="muted" id="not-listed">${esc(notListed(rest))}</p>` : ''}
<h2>Noise decisions</h2><p class="muted">Ignored differences; override with <code>ignore:</code> and <code>keep:</code> rules in retap.yaml.</p>${noise}
<h2>Mocks and capture</h2>
<p>Mocks answered ${v.mocks.matched} of ${v.mocks.calls} outbound calls made; the recording made ${v.mocks.recordedCalls} (${pct(v.mocks.rate)} matched).</p>${misses ? `<ul>${misses}</ul>` : ''}
<p>Capture: ${c.exchanges} exchanges, ${c.ringbufDrops} ring buffer drops, ${c.userBatchDrops} batch drops, ${c.gapBytes} gap bytes; answers seen only by the replay client: ${c.missingLive}.</p>
<script>${SCRIPT}</script>
</body></html>
`;
}
