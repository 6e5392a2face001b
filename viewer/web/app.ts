/**
 * The viewer page: one query (typed, or written by chips, the timeline brush and map edges) held
 * in the page URL, the virtualised list, the pair view, the service map, save-as-snapshot, and a
 * server-sent event stream for new rows and capture health.
 */
import { ApiError, get, type Histogram, isAbort, type MapAnswer, post, type RowsAnswer, type RowView, type State, type Term } from './api.js';
import { byId, clear, el } from './dom.js';
import { count, isoUs, size } from './format.js';
import { TrafficList } from './list.js';
import { renderMap } from './map.js';
import { type PairData, PairView } from './pair.js';
import { Timeline } from './timeline.js';

const qInput = byId<HTMLInputElement>('q');
const newest = byId<HTMLInputElement>('newest');
const statusEl = byId('status');
const errorEl = byId('query-error');
let query = new URLSearchParams(location.search).get('q') ?? '';
let terms: Term[] = [];
let range: { fromUs?: number; toUs?: number } = {};
let view: 'traffic' | 'map' = new URLSearchParams(location.search).get('view') === 'map' ? 'map' : 'traffic';
let state: State | undefined;
let selectedRow: RowView | undefined;

const pair = new PairView(byId('pair'), () => (selectedRow = undefined));
const list = new TrafficList({
  onSelect: (row) => void openPair(row),
  onAnswer: (a) => showCount(a),
  onError: (e) => showError(e),
});
const timeline = new Timeline((fromUs, toUs) => {
  const rest = terms.filter((t) => t.key !== 'from' && t.key !== 'to').map(termText);
  if (fromUs !== undefined) rest.push(`from:${isoUs(fromUs)}`);
  if (toUs !== undefined) rest.push(`to:${new Date(Math.ceil(toUs / 1000)).toISOString()}`);
  void apply(rest.join(' '));
});

function quote(v: string): string {
  return v === '' || /[\s,"\\]/.test(v) ? `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"` : v;
}

function termText(t: Term): string {
  if (t.raw) return t.raw;
  if (t.key === 'text') return t.values.map(quote).join(' ');
  return `${t.key}:${t.values.map(quote).join(',')}`;
}

function order(): 'asc' | 'desc' {
  return newest.checked ? 'desc' : 'asc';
}

function writeUrl(): void {
  const u = new URL(location.href);
  if (query) u.searchParams.set('q', query);
  else u.searchParams.delete('q');
  u.searchParams.set('order', order());
  if (view === 'map') u.searchParams.set('view', 'map');
  else u.searchParams.delete('view');
  history.replaceState(null, '', u);
}

function showError(e: unknown): void {
  if (isAbort(e)) return;
  const msg = e instanceof ApiError ? `${e.message}${e.hint ? ` — ${e.hint}` : ''}` : String((e as Error).message ?? e);
  errorEl.textContent = msg;
  errorEl.hidden = false;
  statusEl.textContent = '';
}

function showCount(a: RowsAnswer & { range?: { fromUs?: number; toUs?: number } }): void {
  statusEl.textContent = `${count(a.count)} of ${count(a.total)} exchanges`;
  statusEl.dataset.count = String(a.count);
  statusEl.dataset.total = String(a.total);
  terms = a.terms;
  range = a.range ?? {};
}

async function apply(q: string): Promise<void> {
  query = q.trim();
  qInput.value = query;
  errorEl.hidden = true;
  statusEl.textContent = 'searching…';
  statusEl.dataset.count = '';
  writeUrl();
  const mine = ++applied;
  try {
    // the rows first (the count shows as soon as they come), then chips, timeline and map
    const a = await list.show(query, order());
    if (a.query !== query && document.activeElement !== qInput) qInput.value = query;
    document.body.dataset.rows = String(Date.now());
    await Promise.all([refreshSide(), view === 'map' ? refreshMap() : Promise.resolve()]);
    if (mine === applied) document.body.dataset.ready = String(Date.now());
  } catch (e) {
    showError(e);
  }
}

let applied = 0;
let side = new AbortController();

async function refreshSide(): Promise<void> {
  side.abort();
  side = new AbortController();
  const signal = side.signal;
  const noTime = terms.filter((t) => t.key !== 'from' && t.key !== 'to').map(termText).join(' ');
  const [facets, hist] = await Promise.all([get<Record<string, Record<string, number>>>('facets', { q: query }, signal), get<Histogram>('histogram', { q: noTime, bins: 160 }, signal)]);
  renderChips(facets);
  timeline.set(hist, range);
}

async function refreshMap(): Promise<void> {
  renderMap(await get<MapAnswer>('map', { q: query }, side.signal), (q) => {
    setView('traffic');
    void apply(q);
  });
}

function toggle(key: string, value: string, single = false): void {
  const next = terms.map((t) => ({ ...t, values: [...t.values] }));
  const t = next.find((x) => x.key === key);
  if (t) {
    t.values = t.values.includes(value) ? t.values.filter((v) => v !== value) : single ? [value] : [...t.values, value];
    t.raw = '';
  } else next.push({ key, values: [value], raw: '' });
  void apply(next.filter((x) => x.values.length > 0).map(termText).join(' '));
}

function isOn(key: string, value: string): boolean {
  return terms.some((t) => t.key === key && t.values.includes(value));
}

function renderChips(f: Record<string, Record<string, number>>): void {
  const box = byId('chips');
  clear(box);
  const group = (label: string, key: string, entries: Array<[string, number]>, single = false) => {
    if (entries.length === 0) return;
    const g = el('span', { class: 'group' }, el('span', { class: 'label', text: label }));
    for (const [value, n] of entries) {
      const on = isOn(key, value);
      const b = el('button', { class: `chip${on ? ' on' : ''}`, attrs: { 'data-key': key, 'data-value': value } }, value, el('span', { class: 'n', text: count(n) }));
      b.addEventListener('click', () => toggle(key, value, single));
      g.append(b);
    }
    box.append(g);
  };
  const withOn = (key: string, entries: Array<[string, number]>, all: string[] = []) => {
    const seen = new Set(entries.map(([k]) => k));
    for (const v of all) if (!seen.has(v) && isOn(key, v)) entries.push([v, 0]);
    return entries;
  };
  group('direction', 'dir', withOn('dir', Object.entries(f.dir ?? {}).filter(([, n]) => n > 0), ['inbound', 'outbound']), true);
  const classes = ['2xx', '3xx', '4xx', '5xx', 'none'];
  group('status', 'status', withOn('status', classes.filter((c) => (f.status?.[c] ?? 0) > 0).map((c) => [c, f.status![c]!]), classes));
  group('protocol', 'proto', withOn('proto', Object.entries(f.proto ?? {})));
  group('service', 'service', withOn('service', Object.entries(f.service ?? {}).slice(0, 8)));
  group('method', 'method', withOn('method', Object.entries(f.method ?? {}).slice(0, 8)));
}

async function openPair(row: RowView): Promise<void> {
  selectedRow = row;
  try {
    const d = await get<PairData>('exchange', { n: row.n });
    if (selectedRow?.n === row.n) pair.show(d);
  } catch (e) {
    showError(e);
  }
}

function setView(v: 'traffic' | 'map'): void {
  view = v;
  byId('traffic').hidden = v !== 'traffic';
  byId('map').hidden = v !== 'map';
  byId('tab-traffic').classList.toggle('active', v === 'traffic');
  byId('tab-map').classList.toggle('active', v === 'map');
  writeUrl();
  if (v === 'map') void refreshMap().catch(showError);
}

function renderState(s: State): void {
  byId('source').textContent = s.source.label;
  byId('source').title = s.source.path ?? '';
  const h = s.health;
  byId('counts').textContent = h.done ? `${count(s.count)} exchanges` : `${count(h.indexed)}${h.total ? ` / ${count(h.total)}` : ''} exchanges${s.source.kind === 'live' ? ' (capturing)' : ' (indexing…)'}`;
  const drops = h.nodes.reduce((n, x) => n + x.ringbufDrops + x.userBatchDrops, 0);
  const gaps = h.nodes.reduce((n, x) => n + x.gapBytes, 0);
  const he = byId('health');
  const running = h.nodes.some((n) => n.running);
  const per = h.nodes.length > 1 ? ` · ${h.nodes.length} nodes` : '';
  he.textContent = `${s.source.kind === 'live' ? (running ? '● live · ' : '■ stopped · ') : ''}drops ${count(drops)} · gaps ${size(gaps)}${per}`;
  he.className = `health${drops > 0 || gaps > 0 ? ' warn' : ''}${h.warnings.length > 0 ? ' bad' : ''}`;
  he.title = h.nodes.map((n) => `${n.node}: ${n.ringbufDrops} ring buffer records dropped, ${n.userBatchDrops} batches dropped, ${n.gapBytes} bytes missing in streams${n.connections !== undefined ? `, ${n.connections} connections` : ''}${n.unknownConnections ? `, ${n.unknownConnections} undecoded` : ''}`).join('\n');
  he.dataset.drops = String(drops);
  he.dataset.gaps = String(gaps);
  const w = byId('warnings');
  w.hidden = h.warnings.length === 0;
  w.textContent = h.warnings.join(' · ');
  const save = byId<HTMLButtonElement>('save');
  save.disabled = !s.source.save.available;
  save.title = s.source.save.how;
}

let lastCount = -1;
let lastDone = false;
let refreshing = false;
let refreshAgain = false;
async function onState(s: State): Promise<void> {
  state = s;
  renderState(s);
  // new rows, or the loading just finished (the last redraw may have been skipped)
  const finished = s.health.done && !lastDone;
  lastDone = s.health.done;
  if (s.count === lastCount && !finished) return;
  lastCount = s.count;
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  try {
    do {
      refreshAgain = false;
      const started = performance.now();
      await list.refresh();
      // chips, timeline and map count every row: while rows pour in (a big file indexing, a busy
      // live capture) redraw them at most every two seconds, so the server's time goes to indexing
      if (performance.now() - lastSide > 2000 || state?.health.done) {
        lastSide = performance.now();
        await refreshSide();
        if (view === 'map') await refreshMap();
      }
      // and the list at most once a second
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (performance.now() - started))));
    } while (refreshAgain);
  } catch (e) {
    showError(e);
  } finally {
    refreshing = false;
  }
}
let lastSide = 0;

async function save(ev: Event): Promise<void> {
  ev.preventDefault();
  const name = byId<HTMLInputElement>('save-name').value.trim();
  statusEl.textContent = 'saving…';
  try {
    const r = await post<{ path: string; name: string; version: number; written: number; parent?: string }>('save', { q: query, ...(name ? { name } : {}) });
    statusEl.textContent = `saved ${count(r.written)} exchanges as ${r.name}@v${r.version}${r.parent ? ` (parent ${r.parent})` : ''} → ${r.path}`;
    statusEl.dataset.saved = r.path;
  } catch (e) {
    showError(e);
  }
}

async function main(): Promise<void> {
  const s = await get<State>('info');
  state = s;
  const o = new URLSearchParams(location.search).get('order');
  newest.checked = o ? o === 'desc' : s.source.newestFirst;
  renderState(s);
  byId('query-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void apply(qInput.value);
  });
  newest.addEventListener('change', () => void apply(query));
  byId('save-form').addEventListener('submit', (e) => void save(e));
  byId('tab-traffic').addEventListener('click', () => setView('traffic'));
  byId('tab-map').addEventListener('click', () => setView('map'));
  setView(view);
  lastCount = s.count;
  await apply(query);
  const events = new EventSource(new URL('api/events', document.baseURI));
  events.addEventListener('state', (e) => void onState(JSON.parse((e as MessageEvent<string>).data) as State));
  void state;
}

void main().catch(showError);
