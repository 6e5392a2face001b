/**
 * The service map: callers → services → dependencies, from the traffic the query selects. Edges
 * carry request volume, error rate and p95 duration; clicking one filters the list to it.
 */
import type { MapAnswer } from './api.js';
import { byId, clear, el, svg } from './dom.js';
import { count, duration } from './format.js';

const COL = { caller: 0, service: 1, dependency: 2 } as const;
const NODE_W = 200;
const NODE_H = 40;
const GAP_Y = 24;
const COL_X = [40, 440, 840];

export function renderMap(m: MapAnswer, onEdge: (query: string) => void): void {
  const box = byId('map');
  clear(box);
  if (m.nodes.length === 0) {
    box.append(el('p', { class: 'empty', text: 'No traffic selected.' }));
    return;
  }
  const cols: string[][] = [[], [], []];
  for (const n of m.nodes) cols[COL[n.kind]]!.push(n.id);
  const pos = new Map<string, { x: number; y: number }>();
  const rows = Math.max(...cols.map((c) => c.length));
  const height = Math.max(200, rows * (NODE_H + GAP_Y) + 60);
  cols.forEach((ids, c) => {
    const top = (height - ids.length * (NODE_H + GAP_Y)) / 2;
    ids.forEach((id, i) => {
      pos.set(id, { x: COL_X[c]!, y: top + i * (NODE_H + GAP_Y) });
    });
  });
  const root = svg('svg', { width: 1080, height, viewBox: `0 0 1080 ${height}`, 'data-nodes': m.nodes.length, 'data-edges': m.edges.length });
  for (const e of m.edges) {
    const a = pos.get(e.from)!;
    const b = pos.get(e.to)!;
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x;
    const y2 = b.y + NODE_H / 2;
    const d = `M${x1},${y1} C${x1 + 90},${y1} ${x2 - 90},${y2} ${x2},${y2}`;
    const g = svg('g', { class: `edge${e.errorRate >= 0.05 ? ' errors' : e.errors > 0 ? ' some-errors' : ''}`, 'data-from': e.from, 'data-to': e.to, 'data-count': e.count, 'data-query': e.query });
    const title = svg('title');
    title.textContent = `${e.protocols.join(', ')}: ${count(e.count)} requests, ${count(e.errors)} errors, p95 ${duration(e.p95Us)} — click to filter`;
    g.append(title, svg('path', { class: 'hit', d }), svg('path', { class: 'line', d }));
    const label = svg('text', { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 6, 'text-anchor': 'middle' });
    label.textContent = `${count(e.count)} req · ${(e.errorRate * 100).toFixed(1)}% err · p95 ${duration(e.p95Us) || '—'}`;
    g.append(label);
    g.addEventListener('click', () => onEdge(e.query));
    root.append(g);
  }
  for (const n of m.nodes) {
    const p = pos.get(n.id)!;
    const g = svg('g', { class: `node ${n.kind}`, transform: `translate(${p.x},${p.y})`, 'data-id': n.id });
    const kind = svg('text', { class: 'kind', x: 10, y: 14 });
    kind.textContent = n.kind === 'caller' ? 'caller' : n.kind === 'service' ? 'service' : 'dependency';
    const name = svg('text', { x: 10, y: 31 });
    name.textContent = n.label.length > 26 ? `${n.label.slice(0, 25)}…` : n.label;
    const title = svg('title');
    title.textContent = `${n.label} (${count(n.count)} exchanges)`;
    g.append(title, svg('rect', { width: NODE_W, height: NODE_H, rx: 6 }), kind, name);
    root.append(g);
  }
  box.append(root);
}
