/** The timeline: a histogram of the selection over time; dragging a range writes from:/to:. */
import type { Histogram } from './api.js';
import { byId, clear, svg } from './dom.js';
import { time } from './format.js';

export class Timeline {
  private box = byId('timeline');
  private hist: Histogram | undefined;
  private range: { fromUs?: number; toUs?: number } = {};
  private drag: { x0: number; x1: number } | undefined;

  constructor(private readonly onBrush: (fromUs: number | undefined, toUs: number | undefined) => void) {
    this.box.addEventListener('mousedown', (e) => {
      const x = this.x(e);
      this.drag = { x0: x, x1: x };
      this.draw();
    });
    window.addEventListener('mousemove', (e) => {
      if (!this.drag) return;
      this.drag.x1 = this.x(e);
      this.draw();
    });
    window.addEventListener('mouseup', () => {
      const d = this.drag;
      this.drag = undefined;
      if (!d || !this.hist) return;
      const a = Math.min(d.x0, d.x1);
      const b = Math.max(d.x0, d.x1);
      if (b - a < 0.004) return this.draw();
      this.onBrush(this.usAt(a), this.usAt(b));
    });
    this.box.addEventListener('dblclick', () => this.onBrush(undefined, undefined));
  }

  private x(e: MouseEvent): number {
    const r = this.box.getBoundingClientRect();
    return Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
  }

  private usAt(frac: number): number {
    const h = this.hist!;
    return Math.round(h.fromUs + frac * (h.toUs - h.fromUs));
  }

  set(h: Histogram, range: { fromUs?: number; toUs?: number }): void {
    this.hist = h;
    this.range = range;
    this.draw();
  }

  private draw(): void {
    clear(this.box);
    const h = this.hist;
    if (!h) return;
    const W = 1000;
    const H = 64;
    const max = Math.max(1, ...h.counts);
    const bw = W / h.counts.length;
    const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none' });
    h.counts.forEach((c, i) => {
      if (c === 0) return;
      const bh = (c / max) * (H - 12);
      g.append(svg('rect', { class: 'bar', x: i * bw + 0.5, y: H - 12 - bh, width: Math.max(0.5, bw - 1), height: bh }));
      const e = h.errors[i] ?? 0;
      if (e > 0) {
        const eh = (e / max) * (H - 12);
        g.append(svg('rect', { class: 'err', x: i * bw + 0.5, y: H - 12 - eh, width: Math.max(0.5, bw - 1), height: eh }));
      }
    });
    const span = h.toUs - h.fromUs;
    const frac = (us: number) => (us - h.fromUs) / span;
    let a: number | undefined;
    let b: number | undefined;
    if (this.drag) {
      a = Math.min(this.drag.x0, this.drag.x1);
      b = Math.max(this.drag.x0, this.drag.x1);
    } else if (this.range.fromUs !== undefined || this.range.toUs !== undefined) {
      a = Math.max(0, frac(this.range.fromUs ?? h.fromUs));
      b = Math.min(1, frac(this.range.toUs ?? h.toUs));
    }
    if (a !== undefined && b !== undefined && b > a) g.append(svg('rect', { class: 'brush', x: a * W, y: 0, width: (b - a) * W, height: H - 12 }));
    const left = svg('text', { class: 'axis', x: 2, y: H - 2 });
    left.textContent = time(h.fromUs);
    const right = svg('text', { class: 'axis', x: W - 2, y: H - 2, 'text-anchor': 'end' });
    right.textContent = time(h.toUs);
    g.append(left, right);
    this.box.append(g);
  }
}
