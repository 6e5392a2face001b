/**
 * HPACK Huffman decoding (RFC 7541 §5.2, Appendix B). The code is canonical: codes are assigned
 * by increasing length and, within a length, by increasing symbol. So the table is fully given
 * by each symbol's code length, listed here per length; decoding walks lengths bit by bit with
 * the usual first-code/offset arrays, 8 bits at a time through a small state table.
 */

const BY_LENGTH: Array<[number, Array<number | string>]> = [
  [5, ['0', '1', '2', 'a', 'c', 'e', 'i', 'o', 's', 't']],
  [
    6,
    [
      ' ',
      '%',
      '-',
      '.',
      '/',
      '3',
      '4',
      '5',
      '6',
      '7',
      '8',
      '9',
      '=',
      'A',
      '_',
      'b',
      'd',
      'f',
      'g',
      'h',
      'l',
      'm',
      'n',
      'p',
      'r',
      'u',
    ],
  ],
  [
    7,
    [
      ':',
      'B',
      'C',
      'D',
      'E',
      'F',
      'G',
      'H',
      'I',
      'J',
      'K',
      'L',
      'M',
      'N',
      'O',
      'P',
      'Q',
      'R',
      'S',
      'T',
      'U',
      'V',
      'W',
      'Y',
      'j',
      'k',
      'q',
      'v',
      'w',
      'x',
      'y',
      'z',
    ],
  ],
  [8, ['&', '*', ',', ';', 'X', 'Z']],
  [10, ['!', '"', '(', ')', '?']],
  [11, ["'", '+', '|']],
  [12, ['#', '>']],
  [13, [0, '$', '@', '[', ']', '~']],
  [14, ['^', '}']],
  [15, ['<', '`', '{']],
  [19, ['\\', 195, 208]],
  [20, [128, 130, 131, 162, 184, 194, 224, 226]],
  [21, [153, 161, 167, 172, 176, 177, 179, 209, 216, 217, 227, 229, 230]],
  [
    22,
    [
      129, 132, 133, 134, 136, 146, 154, 156, 160, 163, 164, 169, 170, 173, 178, 181, 185, 186, 187, 189, 190,
      196, 198, 228, 232, 233,
    ],
  ],
  [
    23,
    [
      1, 135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152, 155, 157, 158, 165, 166, 168, 174, 175,
      180, 182, 183, 188, 191, 197, 231, 239,
    ],
  ],
  [24, [9, 142, 144, 145, 148, 159, 171, 206, 215, 225, 236, 237]],
  [25, [199, 207, 234, 235]],
  [26, [192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242, 243, 255]],
  [27, [203, 204, 211, 212, 214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250, 251, 252, 253, 254]],
  [
    28,
    [
      2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31, 127,
      220, 249,
    ],
  ],
  [30, [10, 13, 22, 256]],
];

export const EOS = 256;

/** Code and length of every symbol (0–255 and EOS), derived from the canonical lengths. */
export const CODES: Array<{ code: number; len: number }> = (() => {
  const out: Array<{ code: number; len: number }> = new Array(257);
  let code = 0;
  let prevLen = BY_LENGTH[0]![0];
  for (const [len, syms] of BY_LENGTH) {
    code <<= len - prevLen;
    prevLen = len;
    const sorted = syms.map((s) => (typeof s === 'string' ? s.charCodeAt(0) : s)).sort((a, b) => a - b);
    for (const sym of sorted) {
      out[sym] = { code, len };
      code++;
    }
  }
  return out;
})();

/**
 * Decoding automaton: a binary tree of the code, then a table per tree node giving, for each
 * input byte, the node reached and the symbols emitted on the way (at most 2 per byte, since
 * the shortest code has 5 bits). Built once at load (≈ 256 nodes × 256 bytes).
 */
interface Tables {
  /** next[node * 256 + byte] = node after the byte. */
  next: Uint16Array;
  /** Symbols emitted: count in bits 0–1, first symbol bits 2–10, second bits 11–19; bit 20 = error. */
  emit: Uint32Array;
  /** Node is on an all-ones path from the root and at most 7 deep (valid padding end). */
  padOk: Uint8Array;
}

const FAIL = 1 << 20;

function build(): Tables {
  // Tree: child[node*2 + bit]; leaf symbol in sym[node] (-1 for inner nodes).
  const child: number[] = [0, 0];
  const sym: number[] = [-1];
  for (let s = 0; s <= 256; s++) {
    const { code, len } = CODES[s]!;
    let node = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = (code >>> i) & 1;
      let nextNode = child[node * 2 + bit]!;
      if (nextNode === 0) {
        nextNode = sym.length;
        sym.push(-1);
        child.push(0, 0);
        child[node * 2 + bit] = nextNode;
      }
      node = nextNode;
    }
    sym[node] = s;
  }
  const inner: number[] = [];
  const index = new Map<number, number>();
  for (let n = 0; n < sym.length; n++) {
    if (sym[n] === -1) {
      index.set(n, inner.length);
      inner.push(n);
    }
  }
  const next = new Uint16Array(inner.length * 256);
  const emit = new Uint32Array(inner.length * 256);
  const padOk = new Uint8Array(inner.length);
  // Padding: the root and nodes reached by 1..7 one-bits.
  let p = 0;
  padOk[index.get(0)!] = 1;
  for (let i = 0; i < 7; i++) {
    p = child[p * 2 + 1]!;
    padOk[index.get(p)!] = 1;
  }
  for (let k = 0; k < inner.length; k++) {
    for (let byte = 0; byte < 256; byte++) {
      let node = inner[k]!;
      let count = 0;
      let out = 0;
      for (let i = 7; i >= 0; i--) {
        node = child[node * 2 + ((byte >>> i) & 1)]!;
        const s = sym[node]!;
        if (s !== -1) {
          if (s === EOS) {
            out |= FAIL;
            break;
          }
          out |= s << (count === 0 ? 2 : 11);
          count++;
          node = 0;
        }
      }
      next[k * 256 + byte] = index.get(node) ?? 0;
      emit[k * 256 + byte] = out | count;
    }
  }
  return { next, emit, padOk };
}

let tables: Tables | undefined;

/** Decodes a Huffman-coded string to latin1. Throws on EOS inside the data or bad padding. */
export function huffmanDecode(data: Uint8Array, start: number, end: number): string {
  const t = (tables ??= build());
  let state = 0;
  const out = Buffer.allocUnsafe(Math.ceil(((end - start) * 8) / 5));
  let n = 0;
  for (let i = start; i < end; i++) {
    const k = state * 256 + data[i]!;
    const e = t.emit[k]!;
    if (e & FAIL) throw new Error('HPACK Huffman string contains EOS');
    const c = e & 3;
    if (c > 0) out[n++] = (e >>> 2) & 0x1ff;
    if (c > 1) out[n++] = (e >>> 11) & 0x1ff;
    state = t.next[k]!;
  }
  if (!t.padOk[state]) throw new Error('HPACK Huffman string has invalid padding');
  return out.toString('latin1', 0, n);
}

/** Encodes latin1 text with the Huffman code (used by tests and tools). */
export function huffmanEncode(text: string): Buffer {
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const { code, len } = CODES[text.charCodeAt(i) & 0xff]!;
    for (let b = len - 1; b >= 0; b--) {
      acc = (acc << 1) | ((code >>> b) & 1);
      if (++bits === 8) {
        bytes.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) bytes.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) & 0xff);
  return Buffer.from(bytes);
}
