/**
 * The traffic list: virtualised. Only the rows in view (plus a few) exist in the DOM; rows are
 * fetched from the server in pages as they scroll into view. Past ~8 million pixels of rows the
 * scrollbar maps proportionally onto the row range, so a million exchanges scroll like a thousand.
 */
import { FLAG_GAP, FLAG_NO_RESPONSE, FLAG_REPLAY_ERROR, FLAG_REPLAY_FAIL, FLAG_TRUNCATED, get, isAbort, type RowsAnswer, type RowView } from './api.js';
import { byId, el } from './dom.js';
import { duration, size, statusClass, time } from './format.js';

const ROW = 24;
const PAGE = 200;
const MAX_PX = 8_000_000;
const OVERSCAN = 8;

export interface ListOptions {
  onSelect(row: RowView): void;
  onAnswer(a: RowsAnswer): void;
  onError(e: Error): void;
}

export class TrafficList {
  private viewport = byId('viewport');
  private spacer = byId('spacer');
  private rowsEl = byId('rows');
  private query = '';
  private order: 'asc' | 'desc' = 'asc';
  private count = 0;
  private pages = new Map<number, RowView[]>();
  private inflight = new Map<number, Promise<void>>();
  private epoch = 0;
  /** Aborts the requests of the previous query/refresh: the server stops scanning for them. */
  private abort = new AbortController();
  private pool: HTMLDivElement[] = [];
  private selected: number | undefined;
  private frame = 0;

  constructor(private readonly opts: ListOptions) {
    this.viewport.addEventListener('scroll', () => this.schedule());
    new ResizeObserver(() => this.schedule()).observe(this.viewport);
    this.viewport.addEventListener('keydown', (e) => this.key(e));
  }

  /** Shows a query's rows from the top (a new query or order). */
  async show(query: string, order: 'asc' | 'desc'): Promise<RowsAnswer> {
    this.query = query;
    this.order = order;
    this.newEpoch();
    this.inflight.clear();
    this.viewport.scrollTop = 0;
    const a = await this.fetchPage(0);
    return a;
  }

  /** New rows arrived (live, or indexing): keep the position, refetch what is in view. */
  async refresh(): Promise<void> {
    this.newEpoch();
    await this.fetchPage(this.firstVisible() >= PAGE ? Math.floor(this.firstVisible() / PAGE) : 0);
    this.schedule();
  }

  private newEpoch(): void {
    this.epoch++;
    this.abort.abort();
    this.abort = new AbortController();
    this.pages.clear();
    this.inflight.clear();
  }

  get total(): number {
    return this.count;
  }

  private async fetchPage(p: number): Promise<RowsAnswer> {
    const epoch = this.epoch;
    const a = await get<RowsAnswer>('rows', { q: this.query, offset: p * PAGE, limit: PAGE, order: this.order }, this.abort.signal);
    if (epoch !== this.epoch) return a;
    this.count = a.count;
    this.pages.set(p, a.rows);
    this.opts.onAnswer(a);
    this.layout();
    this.schedule();
    return a;
  }

  private want(p: number): void {
    if (this.pages.has(p) || this.inflight.has(p)) return;
    const job = this.fetchPage(p)
      .then(() => undefined)
      .catch((e: Error) => {
        if (!isAbort(e)) this.opts.onError(e);
      })
      .finally(() => this.inflight.delete(p));
    this.inflight.set(p, job);
  }

  private layout(): void {
    this.spacer.style.height = `${Math.min(this.count * ROW, MAX_PX)}px`;
  }

  private firstVisible(): number {
    const vh = this.viewport.clientHeight;
    const full = this.count * ROW;
    if (full <= MAX_PX) return Math.floor(this.viewport.scrollTop / ROW);
    const visible = Math.ceil(vh / ROW);
    const frac = this.viewport.scrollTop / Math.max(1, MAX_PX - vh);
    return Math.min(Math.max(0, this.count - visible), Math.round(frac * (this.count - visible)));
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private render(): void {
    const vh = this.viewport.clientHeight;
    const first = this.firstVisible();
    const scaled = this.count * ROW > MAX_PX;
    const n = Math.min(this.count - first, Math.ceil(vh / ROW) + OVERSCAN);
    const top = scaled ? this.viewport.scrollTop : first * ROW;
    this.rowsEl.style.transform = `translateY(${top}px)`;
    while (this.pool.length < n) {
      const r = el('div', { class: 'row' });
      r.addEventListener('click', () => {
        const n = Number(r.dataset.n);
        const page = this.pages.get(Math.floor(Number(r.dataset.i) / PAGE));
        const row = page?.[Number(r.dataset.i) % PAGE];
        if (row && row.n === n) this.select(row);
      });
      this.pool.push(r);
      this.rowsEl.append(r);
    }
    for (let k = 0; k < this.pool.length; k++) {
      const r = this.pool[k]!;
      if (k >= n) {
        r.hidden = true;
        continue;
      }
      r.hidden = false;
      const i = first + k;
      const page = this.pages.get(Math.floor(i / PAGE));
      const row = page?.[i % PAGE];
      if (!row) {
        this.want(Math.floor(i / PAGE));
        if (r.dataset.i !== String(i)) {
          r.dataset.i = String(i);
          r.dataset.n = '';
          r.replaceChildren(el('span', { class: 'c-target', text: '…' }));
        }
        continue;
      }
      if (r.dataset.i === String(i) && r.dataset.n === String(row.n)) {
        r.classList.toggle('selected', row.n === this.selected);
        continue;
      }
      r.dataset.i = String(i);
      r.dataset.n = String(row.n);
      fillRow(r, row);
      r.classList.toggle('selected', row.n === this.selected);
    }
  }

  select(row: RowView): void {
    this.selected = row.n;
    for (const r of this.pool) r.classList.toggle('selected', r.dataset.n === String(row.n));
    this.opts.onSelect(row);
  }

  private key(e: KeyboardEvent): void {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    e.preventDefault();
    const rows = this.pool.filter((r) => !r.hidden && r.dataset.n);
    const at = rows.findIndex((r) => r.dataset.n === String(this.selected));
    const next = rows[Math.max(0, Math.min(rows.length - 1, at + (e.key === 'ArrowDown' ? 1 : -1)))];
    next?.click();
  }
}

function fillRow(r: HTMLElement, row: RowView): void {
  const flags: string[] = [];
  if (row.flags & FLAG_GAP) flags.push('gap');
  if (row.flags & FLAG_TRUNCATED) flags.push('truncated');
  const status = row.status === undefined ? (row.flags & FLAG_NO_RESPONSE ? 'none' : '') : String(row.status);
  const grpc = row.grpcStatus !== undefined && row.grpcStatus !== 0 ? ` g${row.grpcStatus}` : '';
  r.className = 'row';
  if (row.flags & FLAG_REPLAY_FAIL) r.classList.add('verdict-fail');
  if (row.flags & FLAG_REPLAY_ERROR) r.classList.add('verdict-error');
  r.replaceChildren(
    el('span', { class: 'c-time', text: time(row.startUs) }),
    el('span', { class: 'c-dir', text: row.dir === 'inbound' ? '→in' : 'out→', title: row.dir }),
    el('span', { class: 'c-method', text: row.method }),
    el('span', { class: 'c-target', title: `${row.host}${row.target}` }, el('span', { class: 't', text: row.target }), flags.length ? el('span', { class: 'flag', text: `⚠ ${flags.join(' ')}` }) : undefined),
    el('span', { class: `c-status ${statusClass(row.status)}`, text: status + grpc }),
    el('span', { class: 'c-dur', text: duration(row.durUs) }),
    el('span', { class: 'c-svc', text: row.service }),
    el('span', { class: 'c-peer', text: row.dir === 'outbound' ? row.host : row.peer }),
    el('span', { class: 'c-proto', text: row.protocol }),
    el('span', { class: 'c-size', text: size(row.size) }),
  );
}
