/**
 * The viewer's index: one row per exchange, kept as typed-array columns and small string tables,
 * never as decoded exchange objects. A row knows where its line sits in the source's file (byte
 * offset and length), so the whole exchange is read and parsed only when it is shown or a filter
 * needs more than the summary. About 90 bytes a row plus the target text.
 */
import { type ExchangeSummary, hostOfStored, serviceOfStored } from '../snapshots/index.js';

// biome-ignore lint/suspicious/noExplicitAny: schema-checked stored exchange
type Stored = any;

/** Interned strings: id ↔ string. */
export class StringTable {
  private ids = new Map<string, number>();
  readonly list: string[] = [];
  id(s: string): number {
    let i = this.ids.get(s);
    if (i === undefined) {
      i = this.list.length;
      this.list.push(s);
      this.ids.set(s, i);
    }
    return i;
  }
  get(i: number): string {
    return this.list[i] ?? '';
  }
  has(s: string): number | undefined {
    return this.ids.get(s);
  }
}

export const FLAG_GAP = 1;
export const FLAG_TRUNCATED = 2;
export const FLAG_NO_RESPONSE = 4;
export const FLAG_TLS = 8;
export const FLAG_RESET = 16;
/** Replay results: the item failed (assertions) or could not be judged. */
export const FLAG_REPLAY_FAIL = 32;
export const FLAG_REPLAY_ERROR = 64;

export const DIR_INBOUND = 0;
export const DIR_OUTBOUND = 1;
export const NO_GRPC = 255;

type Num = Float64Array | Float32Array | Uint32Array | Uint16Array | Uint8Array;

function grow<T extends Num>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One row as the list shows it. */
export interface RowView {
  n: number;
  startUs: number;
  dir: 'inbound' | 'outbound';
  method: string;
  target: string;
  host: string;
  status?: number;
  grpcStatus?: number;
  durUs?: number;
  srvUs?: number;
  protocol: string;
  service: string;
  peer: string;
  size: number;
  flags: number;
}

export class Columns {
  count = 0;
  private cap = 0;
  off = new Float64Array(0);
  len = new Uint32Array(0);
  startUs = new Float64Array(0);
  /** Request first byte → response last byte (else first byte, else request end), µs; NaN unknown. */
  durUs = new Float32Array(0);
  /** Server-side latency, µs; NaN unknown. */
  srvUs = new Float32Array(0);
  status = new Uint16Array(0);
  grpc = new Uint8Array(0);
  dir = new Uint8Array(0);
  proto = new Uint8Array(0);
  method = new Uint16Array(0);
  service = new Uint32Array(0);
  peerAddr = new Uint32Array(0);
  peerPort = new Uint16Array(0);
  host = new Uint32Array(0);
  size = new Float64Array(0);
  flags = new Uint8Array(0);
  private tOff = new Uint32Array(1);
  private tHeap = new Uint8Array(0);
  private tUsed = 0;

  readonly protocols = new StringTable();
  readonly methods = new StringTable();
  readonly services = new StringTable();
  readonly peers = new StringTable();
  readonly hosts = new StringTable();

  minUs = Number.POSITIVE_INFINITY;
  maxUs = Number.NEGATIVE_INFINITY;

  private ensure(n: number): void {
    if (n <= this.cap) return;
    const cap = Math.max(1024, this.cap * 2, n);
    this.off = grow(this.off, cap);
    this.len = grow(this.len, cap);
    this.startUs = grow(this.startUs, cap);
    this.durUs = grow(this.durUs, cap);
    this.srvUs = grow(this.srvUs, cap);
    this.status = grow(this.status, cap);
    this.grpc = grow(this.grpc, cap);
    this.dir = grow(this.dir, cap);
    this.proto = grow(this.proto, cap);
    this.method = grow(this.method, cap);
    this.service = grow(this.service, cap);
    this.peerAddr = grow(this.peerAddr, cap);
    this.peerPort = grow(this.peerPort, cap);
    this.host = grow(this.host, cap);
    this.size = grow(this.size, cap);
    this.flags = grow(this.flags, cap);
    this.tOff = grow(this.tOff, cap + 1);
    this.cap = cap;
  }

  private pushTarget(target: string): void {
    const bytes = enc.encode(target);
    if (this.tUsed + bytes.length > this.tHeap.length) {
      this.tHeap = grow(this.tHeap, Math.max(1 << 16, this.tHeap.length * 2, this.tUsed + bytes.length));
    }
    this.tHeap.set(bytes, this.tUsed);
    this.tUsed += bytes.length;
  }

  /** Appends a row for a stored exchange found at [offset, offset + length) of the source file. */
  add(v: Stored, offset: number, length: number, extraFlags = 0): number {
    const n = this.count;
    this.ensure(n + 1);
    this.off[n] = offset;
    this.len[n] = length;
    const t = v.timing;
    this.startUs[n] = t.startUs;
    if (t.startUs < this.minUs) this.minUs = t.startUs;
    if (t.startUs > this.maxUs) this.maxUs = t.startUs;
    const end = t.responseEndNs ?? t.responseStartNs;
    this.durUs[n] = end === undefined ? Number.NaN : end / 1000;
    this.srvUs[n] = t.responseStartNs === undefined ? Number.NaN : Math.max(0, t.responseStartNs - t.requestEndNs) / 1000;
    const res = v.response;
    this.status[n] = res ? res.status : 0;
    const g = v.extras?.grpc?.status;
    this.grpc[n] = typeof g === 'number' && g >= 0 && g < 255 ? g : NO_GRPC;
    this.dir[n] = v.direction === 'outbound' ? DIR_OUTBOUND : DIR_INBOUND;
    this.proto[n] = this.protocols.id(String(v.protocol));
    this.method[n] = this.methods.id(String(v.request.method));
    this.service[n] = this.services.id(serviceOfStored(v));
    this.peerAddr[n] = this.peers.id(String(v.peer.addr));
    this.peerPort[n] = Number(v.peer.port) || 0;
    this.host[n] = this.hosts.id(hostOfStored(v));
    this.size[n] = (v.request.body?.size ?? 0) + (res?.body?.size ?? 0);
    let f = extraFlags;
    const notes: string[] = v.notes ?? [];
    if (notes.includes('gap')) f |= FLAG_GAP;
    if (notes.includes('truncated') || v.request.body?.truncated || res?.body?.truncated) f |= FLAG_TRUNCATED;
    if (!res) f |= FLAG_NO_RESPONSE;
    if (v.tls) f |= FLAG_TLS;
    if (notes.includes('reset')) f |= FLAG_RESET;
    this.flags[n] = f;
    this.pushTarget(String(v.request.target));
    this.tOff[n + 1] = this.tUsed;
    this.count = n + 1;
    return n;
  }

  target(n: number): string {
    return dec.decode(this.tHeap.subarray(this.tOff[n]!, this.tOff[n + 1]!));
  }

  dirName(n: number): 'inbound' | 'outbound' {
    return this.dir[n] === DIR_OUTBOUND ? 'outbound' : 'inbound';
  }

  /** A reusable summary over row `n` for `quick` filter conditions; fields are read when asked. */
  summaryView(): { at(n: number): ExchangeSummary } {
    const c = this;
    let row = 0;
    const view: ExchangeSummary = {
      get startUs() {
        return c.startUs[row]!;
      },
      get direction() {
        return c.dirName(row);
      },
      get method() {
        return c.methods.get(c.method[row]!);
      },
      get target() {
        return c.target(row);
      },
      get host() {
        return c.hosts.get(c.host[row]!);
      },
      get status() {
        const s = c.status[row]!;
        return s === 0 ? undefined : s;
      },
      get protocol() {
        return c.protocols.get(c.proto[row]!);
      },
      get service() {
        return c.services.get(c.service[row]!);
      },
      get peerAddr() {
        return c.peers.get(c.peerAddr[row]!);
      },
      get peerPort() {
        return c.peerPort[row]!;
      },
    };
    return {
      at(n) {
        row = n;
        return view;
      },
    };
  }

  row(n: number): RowView {
    const status = this.status[n]!;
    const g = this.grpc[n]!;
    const dur = this.durUs[n]!;
    const srv = this.srvUs[n]!;
    const r: RowView = {
      n,
      startUs: this.startUs[n]!,
      dir: this.dirName(n),
      method: this.methods.get(this.method[n]!),
      target: this.target(n),
      host: this.hosts.get(this.host[n]!),
      protocol: this.protocols.get(this.proto[n]!),
      service: this.services.get(this.service[n]!),
      peer: `${this.peers.get(this.peerAddr[n]!)}:${this.peerPort[n]}`,
      size: this.size[n]!,
      flags: this.flags[n]!,
    };
    if (status !== 0) r.status = status;
    if (g !== NO_GRPC) r.grpcStatus = g;
    if (!Number.isNaN(dur)) r.durUs = Math.round(dur * 10) / 10;
    if (!Number.isNaN(srv)) r.srvUs = Math.round(srv * 10) / 10;
    return r;
  }

  /** Bytes the columns hold (for the health line and the benchmark). */
  bytes(): number {
    return this.cap * (8 + 4 + 8 + 4 + 4 + 2 + 1 + 1 + 1 + 2 + 4 + 4 + 2 + 4 + 8 + 1 + 4) + this.tHeap.length;
  }
}
