import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Reassembler } from './reassembly.js';

function collect() {
  const out: Array<{ data?: string; gap?: number }> = [];
  const r = new Reassembler({
    data: (b) => out.push({ data: Buffer.from(b).toString() }),
    gap: (n) => out.push({ gap: n }),
  });
  return { r, out, text: () => out.map((o) => o.data ?? `<${o.gap}>`).join('') };
}
const b = (s: string): Uint8Array => Buffer.from(s);

describe('Reassembler', () => {
  it('delivers in-order records as they come', () => {
    const { r, text } = collect();
    r.push(0, 3, b('abc'), 1);
    r.push(3, 2, b('de'), 2);
    expect(text()).toBe('abcde');
    expect(r.next).toBe(5);
  });

  it('puts records back in order within a batch', () => {
    const { r, text } = collect();
    r.push(0, 2, b('ab'), 1);
    r.push(4, 2, b('ef'), 3);
    r.push(2, 2, b('cd'), 2);
    r.flush();
    expect(text()).toBe('abcdef');
    expect(r.lost).toBe(0);
  });

  it('turns a hole still open at the end of a batch into an explicit gap', () => {
    const { r, text } = collect();
    r.push(0, 2, b('ab'), 1);
    r.push(10, 2, b('kl'), 2);
    r.flush();
    expect(text()).toBe('ab<8>kl');
    expect(r.lost).toBe(8);
  });

  it('records size-only bytes as a gap of their size', () => {
    const { r, text } = collect();
    r.push(0, 5, b('ab'), 1);
    r.push(5, 1, b('z'), 2);
    expect(text()).toBe('ab<3>z');
  });

  it('trims overlaps and drops duplicates', () => {
    const { r, text } = collect();
    r.push(0, 4, b('abcd'), 1);
    r.push(2, 4, b('cdef'), 2);
    r.push(0, 2, b('ab'), 3);
    expect(text()).toBe('abcdef');
  });

  it('starts where it joined a stream already under way', () => {
    const { r, text } = collect();
    r.push(1000, 3, b('xyz'), 1);
    expect(text()).toBe('xyz');
    expect(r.lost).toBe(0);
  });

  it('any arrival order within one batch yields the original bytes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 20 }),
        fc.nat(),
        (parts, seed) => {
          const records: Array<[number, string]> = [];
          let pos = 0;
          for (const p of parts) {
            records.push([pos, p]);
            pos += Buffer.byteLength(p);
          }
          // keep the first record first (it defines where the stream starts), shuffle the rest
          const rest = records.slice(1);
          let s = seed;
          for (let i = rest.length - 1; i > 0; i--) {
            s = (s * 1103515245 + 12345) & 0x7fffffff;
            const j = s % (i + 1);
            [rest[i], rest[j]] = [rest[j]!, rest[i]!];
          }
          const { r, text } = collect();
          for (const [p, t] of [records[0]!, ...rest]) r.push(p, Buffer.byteLength(t), b(t), 0);
          r.flush();
          expect(text()).toBe(parts.join(''));
          expect(r.lost).toBe(0);
        },
      ),
    );
  });
});

describe('Reassembler.endAt', () => {
  it('reports bytes lost after the last record as a final gap', () => {
    const { r, text } = collect();
    r.push(0, 3, b('abc'), 1);
    r.endAt(10, 2);
    expect(text()).toBe('abc<7>');
    expect(r.lost).toBe(7);
    r.endAt(10, 3);
    expect(r.lost).toBe(7);
  });
});
