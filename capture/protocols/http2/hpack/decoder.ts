/**
 * HPACK header block decoding (RFC 7541) for one direction of one connection, with its dynamic
 * table. When capture joined a connection mid-stream, entries added before we joined are
 * unknown: references to them are skipped (never guessed) and reported through `unknown`, while
 * entries added since are tracked exactly (new entries are always the lowest dynamic indexes).
 */
import type { HeaderList } from '../../../../core/exchange.js';
import { huffmanDecode } from './huffman.js';
import { STATIC_TABLE } from './static-table.js';

export class HpackError extends Error {}

/**
 * Largest dynamic table we keep. A peer may announce any size; past this we keep the newest
 * entries only and treat references beyond them like a mid-stream join (left out, noted), so a
 * hostile table size costs nothing.
 */
export const MAX_TABLE_BYTES = 64 * 1024;

interface Entry {
  /** undefined: added by a literal whose name referenced an entry we do not know. */
  name: string | undefined;
  value: string;
  size: number;
}

export interface DecodedBlock {
  headers: HeaderList;
  /** Some fields referenced dynamic entries we never saw and were left out. */
  unknown: boolean;
  /** Name and value bytes of `headers`, plus 32 per field (RFC 7541 §4.1 counting). */
  listBytes: number;
  /** The list passed `maxListBytes`: the fields from there on were decoded (for the table) but not kept. */
  cut: boolean;
}

export class HpackDecoder {
  /** Newest first. */
  private entries: Entry[] = [];
  private size = 0;
  private maxSize: number;
  /** Upper bound the peer allowed with SETTINGS_HEADER_TABLE_SIZE. */
  private limit: number;

  /** `midStream`: the table's earlier content is unknown (references past our entries are skipped). */
  constructor(
    maxSize = 4096,
    public midStream = false,
  ) {
    this.maxSize = maxSize;
    this.limit = maxSize;
  }

  get tableSize(): number {
    return this.size;
  }

  get tableMaxSize(): number {
    return this.maxSize;
  }

  get tableEntries(): ReadonlyArray<readonly [string | undefined, string]> {
    return this.entries.map((e) => [e.name, e.value] as const);
  }

  /**
   * SETTINGS_HEADER_TABLE_SIZE from the decoding side's peer settings: the encoder may use up
   * to this much. A smaller value forces the table down right away (the encoder must follow with a
   * size update, RFC 7541 §4.2).
   */
  setLimit(n: number): void {
    this.limit = n;
    if (this.maxSize > n) {
      this.maxSize = n;
      this.evict(0);
    }
  }

  /**
   * Decodes one complete header block. Throws HpackError when the block is malformed. Fields past
   * `maxListBytes` are still decoded (the table must follow the encoder) but not kept: a small
   * block repeating a large table entry cannot grow into a large header list.
   */
  decode(block: Uint8Array, maxListBytes = Number.POSITIVE_INFINITY): DecodedBlock {
    const headers: HeaderList = [];
    let listBytes = 0;
    let unknown = false;
    let pos = 0;
    const end = block.length;
    while (pos < end) {
      const b = block[pos]!;
      if (b & 0x80) {
        // Indexed field (§6.1).
        const [index, p] = readInt(block, pos, 7);
        pos = p;
        if (index === 0) throw new HpackError('HPACK index 0');
        const f = this.lookup(index);
        if (f && f[0] !== undefined) {
          listBytes += f[0].length + f[1].length + 32;
          if (listBytes <= maxListBytes) headers.push([f[0], f[1]]);
        } else unknown = true;
      } else if (b & 0x40) {
        // Literal with incremental indexing (§6.2.1).
        const r = this.literal(block, pos, 6);
        pos = r.pos;
        if (r.name !== undefined) {
          listBytes += r.name.length + r.value.length + 32;
          if (listBytes <= maxListBytes) headers.push([r.name, r.value]);
        } else unknown = true;
        this.add(r.name, r.value, r.nameLen);
      } else if (b & 0x20) {
        // Dynamic table size update (§6.3).
        const [n, p] = readInt(block, pos, 5);
        pos = p;
        if (n > this.limit && !this.midStream)
          throw new HpackError(`HPACK table size update ${n} above limit ${this.limit}`);
        this.maxSize = n;
        this.capTable();
        this.evict(0);
      } else {
        // Literal without indexing / never indexed (§6.2.2, §6.2.3).
        const r = this.literal(block, pos, 4);
        pos = r.pos;
        if (r.name !== undefined) {
          listBytes += r.name.length + r.value.length + 32;
          if (listBytes <= maxListBytes) headers.push([r.name, r.value]);
        } else unknown = true;
      }
    }
    // once past the limit, later fields are left out too (the list is cut where it crossed)
    const cut = listBytes > maxListBytes;
    return { headers, unknown, listBytes: cut ? maxListBytes : listBytes, cut };
  }

  /** Past MAX_TABLE_BYTES the oldest entries are not kept: references to them become unknown. */
  private capTable(): void {
    if (this.maxSize <= MAX_TABLE_BYTES) return;
    this.maxSize = MAX_TABLE_BYTES;
    this.midStream = true;
  }

  /** [name, value] for an index; undefined name when the entry is unknown (mid-stream). */
  private lookup(index: number): readonly [string | undefined, string] | undefined {
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1];
    const e = this.entries[index - STATIC_TABLE.length - 1];
    if (e) return [e.name, e.value];
    if (this.midStream) return undefined;
    throw new HpackError(`HPACK index ${index} beyond the dynamic table (${this.entries.length} entries)`);
  }

  private literal(
    block: Uint8Array,
    pos: number,
    prefix: number,
  ): { name: string | undefined; nameLen: number; value: string; pos: number } {
    const [index, p] = readInt(block, pos, prefix);
    pos = p;
    let name: string | undefined;
    let nameLen = 0;
    if (index === 0) {
      const s = readString(block, pos);
      name = s.value;
      nameLen = name.length;
      pos = s.pos;
    } else {
      const f = this.lookup(index);
      name = f?.[0];
      nameLen = name?.length ?? 0;
    }
    const v = readString(block, pos);
    return { name, nameLen, value: v.value, pos: v.pos };
  }

  private add(name: string | undefined, value: string, nameLen: number): void {
    const size = nameLen + value.length + 32;
    if (size > this.maxSize) {
      // An entry larger than the table empties it (§4.4).
      this.entries = [];
      this.size = 0;
      return;
    }
    this.evict(size);
    this.entries.unshift({ name, value, size });
    this.size += size;
  }

  private evict(room: number): void {
    while (this.size + room > this.maxSize && this.entries.length > 0) {
      this.size -= this.entries.pop()!.size;
    }
  }
}

/** Integer with an N-bit prefix (§5.1); returns [value, next position]. */
export function readInt(buf: Uint8Array, pos: number, prefix: number): [number, number] {
  if (pos >= buf.length) throw new HpackError('HPACK integer past the end of the block');
  const mask = (1 << prefix) - 1;
  let v = buf[pos]! & mask;
  pos++;
  if (v < mask) return [v, pos];
  let shift = 0;
  for (;;) {
    if (pos >= buf.length) throw new HpackError('HPACK integer past the end of the block');
    const b = buf[pos++]!;
    v += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) break;
    if (shift > 28) throw new HpackError('HPACK integer too large');
  }
  return [v, pos];
}

/** String literal (§5.2), raw or Huffman-coded; bytes map to latin1. */
function readString(buf: Uint8Array, pos: number): { value: string; pos: number } {
  if (pos >= buf.length) throw new HpackError('HPACK string past the end of the block');
  const huffman = (buf[pos]! & 0x80) !== 0;
  const [len, p] = readInt(buf, pos, 7);
  const end = p + len;
  if (end > buf.length) throw new HpackError('HPACK string longer than the block');
  let value: string;
  if (huffman) {
    try {
      value = huffmanDecode(buf, p, end);
    } catch (e) {
      throw new HpackError((e as Error).message);
    }
  } else value = Buffer.from(buf.buffer, buf.byteOffset + p, len).toString('latin1');
  return { value, pos: end };
}
