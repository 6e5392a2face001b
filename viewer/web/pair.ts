/**
 * The pair view: Info, Request and Response (headers, body: pretty JSON, decoded gRPC messages,
 * JWTs, images, hex for other binary), and for replay results the recorded and replayed answers
 * side by side with the differences marked.
 */
import { el } from './dom.js';
import { duration, isoUs, size } from './format.js';
import type { RowView } from './api.js';

// biome-ignore lint/suspicious/noExplicitAny: stored exchange JSON from the server
type Any = any;

export interface PairData {
  row: RowView;
  route: string;
  exchange: Any;
  detail?: Any;
}

type Tab = 'info' | 'request' | 'response' | 'replay';

export class PairView {
  private tab: Tab = 'info';
  private data: PairData | undefined;
  private pretty = true;

  constructor(
    private readonly box: HTMLElement,
    private readonly onClose: () => void,
  ) {}

  show(d: PairData): void {
    this.data = d;
    if (this.tab === 'replay' && !d.detail?.runs) this.tab = 'info';
    this.render();
  }

  select(tab: Tab): void {
    this.tab = tab;
    this.render();
  }

  private render(): void {
    const d = this.data;
    if (!d) return;
    this.box.hidden = false;
    const tabs: Array<[Tab, string]> = [
      ['info', 'Info'],
      ['request', 'Request'],
      ['response', 'Response'],
    ];
    if (d.detail?.runs) tabs.push(['replay', 'Recorded vs replayed']);
    const bar = el('div', { class: 'ptabs', attrs: { role: 'tablist' } });
    for (const [t, label] of tabs) {
      const b = el('button', { class: t === this.tab ? 'active' : '', text: label, attrs: { 'data-tab': t } });
      b.addEventListener('click', () => this.select(t));
      bar.append(b);
    }
    const close = el('button', { class: 'close', text: '×', title: 'close' });
    close.addEventListener('click', () => {
      this.box.hidden = true;
      this.onClose();
    });
    bar.append(close);
    const body = el('div', { class: 'pbody', attrs: { 'data-view': this.tab } });
    if (this.tab === 'info') this.info(body, d);
    else if (this.tab === 'request') this.message(body, d.exchange.request, d.exchange, 'request');
    else if (this.tab === 'response') {
      if (d.exchange.response) this.message(body, d.exchange.response, d.exchange, 'response');
      else body.append(el('p', { class: 'note', text: 'No response was captured (the connection ended or capture stopped first).' }));
    } else this.replay(body, d);
    this.box.replaceChildren(bar, body);
  }

  private info(box: HTMLElement, d: PairData): void {
    const ex = d.exchange;
    const t = ex.timing;
    const res = ex.response;
    const grpc = ex.extras?.grpc;
    const rows: Array<[string, string]> = [
      ['status', res ? `${res.status}${res.reason ? ` ${res.reason}` : ''}` : 'no response'],
      ...(grpc?.status !== undefined ? ([['grpc-status', `${grpc.status}${grpc.message ? ` ${grpc.message}` : ''}`]] as Array<[string, string]>) : []),
      ['duration', duration(d.row.durUs) || 'unknown'],
      ['server-side', d.row.srvUs !== undefined ? `${duration(d.row.srvUs)} (request's last byte read → response's first byte written, at the socket)` : 'unknown'],
      ['method', ex.request.method],
      ['url', `${d.row.host}${ex.request.target}`],
      ['route', d.route],
      ['time', `${isoUs(t.startUs)} (${t.startUs} µs)`],
      ['direction', ex.direction === 'inbound' ? 'inbound (the service answered)' : 'outbound (the service called a dependency)'],
      ['service', `${d.row.service} (${ex.service.addr}:${ex.service.port}${ex.service.pid ? `, pid ${ex.service.pid}` : ''}${ex.service.comm ? `, ${ex.service.comm}` : ''})`],
      ['peer', `${ex.peer.addr}:${ex.peer.port}${ex.peer.host ? ` (${ex.peer.host})` : ''}`],
      ['protocol', `${ex.protocol} ${ex.request.version}`],
      ['connection', `${ex.connection.id} #${ex.connection.order}`],
      ['TLS', ex.tls ? 'yes (plaintext captured at the TLS library)' : 'no'],
      ['sizes', `request ${size(ex.request.body.size)}, response ${res ? size(res.body.size) : '—'}`],
      ['id', ex.id],
    ];
    box.append(kv(rows));
    const notes: string[] = [...(ex.notes ?? [])];
    if (ex.request.body.truncated) notes.push('request body truncated');
    if (res?.body.truncated) notes.push('response body truncated');
    box.append(el('h3', { text: 'capture notes' }));
    box.append(el('p', { class: notes.length ? 'note' : '', attrs: { 'data-notes': notes.join(',') }, text: notes.length ? notes.map(explainNote).join('; ') : 'none: every byte of this exchange was captured' }));
    if (d.detail && !d.detail.runs) box.append(el('h3', { text: 'replay' }), el('p', { text: `${d.detail.role} (item ${d.detail.item}${d.detail.verdict ? `, ${d.detail.verdict.status}` : ''})` }));
  }

  private message(box: HTMLElement, m: Any, ex: Any, side: 'request' | 'response'): void {
    box.append(el('h3', { text: side === 'request' ? `${m.method} ${m.target} ${m.version}` : `${m.version} ${m.status} ${m.reason ?? ''}` }));
    box.append(el('h3', { text: 'headers' }), kv(m.headers as Array<[string, string]>));
    if (m.trailers?.length) box.append(el('h3', { text: 'trailers' }), kv(m.trailers));
    const jwts = findJwts([...(m.headers as Array<[string, string]>).map(([, v]) => v), bodyText(m.body) ?? '']);
    for (const j of jwts) {
      box.append(el('h3', { text: 'JWT (decoded, signature not checked)' }), el('pre', { class: 'body jwt', text: `${pretty(j.header)}\n${pretty(j.payload)}` }));
    }
    const grpc = ex.extras?.grpc;
    if (grpc) {
      const msgs = (side === 'request' ? grpc.requestMessages : grpc.responseMessages) as Any[];
      box.append(el('h3', { text: `gRPC ${grpc.service}/${grpc.method}: ${msgs.length} message(s), decoded` }));
      msgs.forEach((msg, i) => {
        const v = msg.value !== undefined ? msg.value : msg.fields ? rawFields(msg.fields) : undefined;
        box.append(el('pre', { class: 'body grpc', attrs: { 'data-message': String(i) }, text: v !== undefined ? pretty(v) : `(${msg.error ?? 'not decoded'}, ${msg.length} bytes)` }));
      });
    }
    this.bodyView(box, m.body, header(m.headers, 'content-type'), grpc !== undefined);
  }

  private bodyView(box: HTMLElement, b: Any, contentType: string | undefined, grpc: boolean): void {
    const title = el('h3', { text: `body ${size(b.size)}${b.truncated ? ' (truncated: bytes missing)' : ''}${contentType ? ` · ${contentType}` : ''}` });
    box.append(title);
    if (b.size === 0 && b.data === '') {
      box.append(el('p', { class: 'muted', text: 'empty' }));
      return;
    }
    const text = bodyText(b);
    const ct = (contentType ?? '').toLowerCase();
    const image = /^image\/(png|jpeg|gif|webp|bmp|x-icon)/.exec(ct);
    if (image && b.encoding === 'base64' && !b.truncated) {
      box.append(el('img', { class: 'preview', attrs: { src: `data:${image[0]};base64,${b.data}`, alt: 'response image' } }));
      return;
    }
    if (text !== undefined) {
      const json = parseJson(text);
      if (json !== undefined) {
        const toggle = el('button', { class: 'toggle', text: this.pretty ? 'raw' : 'pretty', attrs: { 'data-toggle': 'pretty' } });
        toggle.addEventListener('click', () => {
          this.pretty = !this.pretty;
          this.render();
        });
        title.append(toggle);
        box.append(el('pre', { class: `body ${this.pretty ? 'json-pretty' : 'json-raw'}`, text: this.pretty ? pretty(json) : text }));
        return;
      }
      box.append(el('pre', { class: 'body text', text }));
      return;
    }
    box.append(el('p', { text: grpc ? 'raw bytes (the messages above are their decoding):' : 'binary; first bytes:' }));
    box.append(el('pre', { class: 'body hex', text: hexdump(b.data) }));
  }

  private replay(box: HTMLElement, d: PairData): void {
    const det = d.detail;
    const v = det.verdict;
    box.append(el('p', { text: `item ${det.item}: ${v ? v.status : 'not judged'}${v?.error ? ` — ${v.error}` : ''}` }));
    if (v?.diffs?.length) {
      const t = el('table', { class: 'kv diffs' });
      for (const x of v.diffs as Any[]) {
        const cls = x.noise ? 'noise' : x.rating;
        t.append(
          el(
            'tr',
            {},
            el('td', { class: cls, text: x.path }),
            el('td', { class: cls, text: `${x.message}${x.noise ? ` (ignored: ${x.noise.reason})` : ''}` }),
          ),
        );
      }
      box.append(el('h3', { text: 'differences (as the verdict judges them)' }), t);
    }
    const rec = d.exchange.response;
    for (const run of det.runs as Any[]) {
      box.append(el('h3', { text: `recorded ⟷ ${run.label} (${run.role})` }));
      if (!run.replayed) {
        box.append(el('p', { class: 'note', text: 'not replayed in this run' }));
        continue;
      }
      const live = run.live?.response;
      if (!live) {
        box.append(el('p', { class: 'note', text: `no captured answer; the client saw ${run.client?.error ?? `status ${run.client?.status ?? '—'}`}` }));
        continue;
      }
      const a = answerLines(rec);
      const b = answerLines(live);
      const { left, right } = sideBySide(a, b);
      box.append(el('div', { class: 'side' }, left, right));
    }
  }
}

function explainNote(n: string): string {
  const why: Record<string, string> = {
    gap: 'gap: bytes of this connection were lost in capture',
    truncated: 'truncated: part of a body is missing',
    'no-response': 'no response seen',
    reset: 'the connection was reset',
    'hpack-state-unknown': 'joined an HTTP/2 connection mid-way: some headers may be unknown',
  };
  return why[n] ?? n;
}

function kv(rows: Array<[string, string]>): HTMLTableElement {
  const t = el('table', { class: 'kv' });
  for (const [k, v] of rows) t.append(el('tr', {}, el('td', { text: k }), el('td', { text: v })));
  return t;
}

function header(h: Array<[string, string]>, name: string): string | undefined {
  return h.find(([n]) => n.toLowerCase() === name)?.[1];
}

function bodyText(b: Any): string | undefined {
  if (b.decoded?.encoding === 'utf8') return b.decoded.data as string;
  return b.encoding === 'utf8' ? (b.data as string) : undefined;
}

function parseJson(text: string): unknown {
  const t = text.trim();
  if (t === '' || (t[0] !== '{' && t[0] !== '[')) return undefined;
  try {
    return JSON.parse(t);
  } catch {
    return undefined;
  }
}

function pretty(v: unknown): string {
  return JSON.stringify(v, null, 2);
}

/** Schema-less protobuf fields as a readable object: field numbers as keys, repeated ones as lists. */
function rawFields(fields: Any[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const v = f.message ? rawFields(f.message) : (f.string ?? f.value ?? (f.bytes !== undefined ? `bytes:${f.bytes}` : null));
    const k = String(f.field);
    if (k in out) out[k] = Array.isArray(out[k]) ? [...(out[k] as unknown[]), v] : [out[k], v];
    else out[k] = v;
  }
  return out;
}

function b64urlJson(s: string): unknown {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(s.length / 4) * 4, '='));
  const bytes = Uint8Array.from(b, (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function findJwts(texts: string[]): Array<{ header: unknown; payload: unknown }> {
  const out: Array<{ header: unknown; payload: unknown }> = [];
  const seen = new Set<string>();
  for (const t of texts) {
    for (const m of t.matchAll(/eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g)) {
      if (seen.has(m[0])) continue;
      seen.add(m[0]);
      const [h, p] = m[0].split('.');
      try {
        out.push({ header: b64urlJson(h!), payload: b64urlJson(p!) });
      } catch {
        /* looked like a JWT, was not */
      }
      if (out.length >= 5) return out;
    }
  }
  return out;
}

function hexdump(b64: string): string {
  const bin = atob(b64.slice(0, 4096));
  const lines: string[] = [];
  for (let i = 0; i < Math.min(bin.length, 1024); i += 16) {
    const chunk = bin.slice(i, i + 16);
    const hex = [...chunk].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join(' ');
    const asc = [...chunk].map((c) => (c.charCodeAt(0) >= 32 && c.charCodeAt(0) < 127 ? c : '.')).join('');
    lines.push(`${i.toString(16).padStart(6, '0')}  ${hex.padEnd(47)}  ${asc}`);
  }
  return lines.join('\n');
}

function answerLines(res: Any): string[] {
  if (!res) return ['(no answer)'];
  const lines = [`${res.status} ${res.reason ?? ''}`.trim()];
  for (const [n, v] of res.headers as Array<[string, string]>) lines.push(`${n.toLowerCase()}: ${v}`);
  lines.push('');
  const text = bodyText(res.body);
  const json = text === undefined ? undefined : parseJson(text);
  const body = json !== undefined ? pretty(json) : (text ?? `(binary, ${res.body.size} bytes)`);
  lines.push(...body.split('\n'));
  return lines.slice(0, 1500);
}

/** Line diff (longest common subsequence): deleted lines marked left, inserted right. */
function sideBySide(a: string[], b: string[]): { left: HTMLElement; right: HTMLElement } {
  const n = a.length;
  const m = b.length;
  const L: Uint16Array[] = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i]![j] = a[i] === b[j] ? L[i + 1]![j + 1]! + 1 : Math.max(L[i + 1]![j]!, L[i]![j + 1]!);
  const left = el('pre', { class: 'body recorded' });
  const right = el('pre', { class: 'body replayed' });
  let i = 0;
  let j = 0;
  const line = (pre: HTMLElement, text: string, cls?: string) => pre.append(el('div', { class: cls ?? '', text: text === '' ? ' ' : text }));
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      line(left, a[i]!);
      line(right, b[j]!);
      i++;
      j++;
    } else if (j < m && (i === n || L[i]![j + 1]! >= L[i + 1]![j]!)) {
      line(right, b[j]!, 'ins');
      j++;
    } else {
      line(left, a[i]!, 'del');
      i++;
    }
  }
  return { left, right };
}
