/**
 * Decodes the addon's batches: `[u32 len][u32 0][record, padded to 8]…`, records laid out as in
 * bpf/retap.h. One DataView per batch; payloads are subarray views (no copy) valid as long as
 * the batch Buffer is referenced.
 */
import { ErrorCodes, RetapError } from '../core/errors.js';

export const EV_DATA = 1;
export const EV_OPEN = 2;
export const EV_CLOSE = 3;
export const EV_TLS_BIND = 4;
export const EV_PROC = 5;
export const EV_LOOP = 6;

/** What an EV_LOOP record says (bpf/retap.h enum retap_loop_kind). */
export const LOOP_TURN = 0;
export const LOOP_REQ_START = 1;
export const LOOP_REQ_DONE = 2;
export const LOOP_REQ_START1 = 3;

export const F_TLS = 1;
export const F_SIZE_ONLY = 2;
export const F_SENDFILE = 4;

export const DIR_IN = 0;
export const DIR_OUT = 1;

export const ROLE_UNKNOWN = 0;
export const ROLE_SERVER = 1;
export const ROLE_CLIENT = 2;

/** The layout this decoder was written for; checked against the addon's at start. */
export const LAYOUT = {
  dataHeader: 56,
  openSize: 104,
  closeSize: 56,
  tlsBindSize: 56,
  procSize: 64,
  loopSize: 32,
} as const;

export interface DataEvent {
  type: typeof EV_DATA;
  flags: number;
  dir: number;
  tgid: number;
  tid: number;
  /** fd, or the SSL object's address (as a decimal string of the u64) for TLS. */
  key: bigint;
  gen: bigint;
  ts: number;
  pos: number;
  /** Bytes captured (payload.length). */
  len: number;
  /** Bytes this record stands for (> len for size-only records). */
  size: number;
  payload: Uint8Array;
}

export interface OpenEvent {
  type: typeof EV_OPEN;
  family: number;
  role: number;
  tgid: number;
  tid: number;
  fd: number;
  gen: bigint;
  ts: number;
  cgroup: bigint;
  lport: number;
  rport: number;
  laddr: string;
  raddr: string;
  comm: string;
}

export interface CloseEvent {
  type: typeof EV_CLOSE;
  tgid: number;
  fd: number;
  gen: bigint;
  ts: number;
  bytesIn: number;
  bytesOut: number;
}

export interface TlsBindEvent {
  type: typeof EV_TLS_BIND;
  tgid: number;
  ssl: bigint;
  sslGen: bigint;
  fd: number;
  gen: bigint;
  ts: number;
}

export interface ProcEvent {
  type: typeof EV_PROC;
  ppid: number;
  tgid: number;
  exec: boolean;
  ts: number;
  comm: string;
  /** Stopped at exec until user space releases it (NativeCapture.releaseExec). */
  held: boolean;
  /** The executable's inode as the kernel names it (for releaseExec). */
  exeDev: bigint;
  exeIno: bigint;
}

/** node's event loop (capture/causal/node-loop.ts): a callback begins, or a thread-pool request starts or ends. */
export interface LoopEvent {
  type: typeof EV_LOOP;
  kind: number;
  tgid: number;
  tid: number;
  /** The libuv request (REQ_START / REQ_DONE), 0n for a turn. */
  req: bigint;
  ts: number;
}

export type CaptureEvent = DataEvent | OpenEvent | CloseEvent | TlsBindEvent | ProcEvent | LoopEvent;

export function checkLayout(native: Record<string, number>): void {
  for (const [k, v] of Object.entries(LAYOUT)) {
    if (native[k] !== v) {
      throw new RetapError(
        ErrorCodes.ADDON_LOAD,
        `the native addon was built with a different event layout (${k}: addon ${native[k]}, decoder ${v})`,
        { hint: 'Rebuild with `npm run build` (or ci/setup) so the addon and the TypeScript agree.' },
      );
    }
  }
}

function cstr(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return Buffer.from(bytes.buffer, bytes.byteOffset, end === -1 ? bytes.length : end).toString('latin1');
}

export function formatAddr(family: number, bytes: Uint8Array): string {
  if (family === 2) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  // IPv4-mapped IPv6 reads better as IPv4
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return parts.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/**
 * A u64 as a number, without a BigInt per read (the same value Number(getBigUint64) gives: exact
 * below 2^53, rounded to the nearest double above).
 */
function u64(view: DataView, at: number): number {
  return view.getUint32(at + 4, true) * 4294967296 + view.getUint32(at, true);
}

/**
 * Calls `visit` for each record in the batch. A malformed record ends the batch (counted by the
 * caller through the return value: bytes not decoded).
 */
export function decodeBatch(batch: Uint8Array, visit: (ev: CaptureEvent) => void): number {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  let at = 0;
  while (at + 8 <= batch.byteLength) {
    const len = view.getUint32(at, true);
    const rec = at + 8;
    if (len < 8 || rec + len > batch.byteLength) return batch.byteLength - at;
    const type = view.getUint32(rec, true);
    switch (type) {
      case EV_DATA: {
        const captured = view.getUint32(rec + 48, true);
        if (LAYOUT.dataHeader + captured > len) return batch.byteLength - at;
        visit({
          type: EV_DATA,
          flags: view.getUint16(rec + 4, true),
          dir: view.getUint8(rec + 6),
          tgid: view.getUint32(rec + 8, true),
          tid: view.getUint32(rec + 12, true),
          key: view.getBigUint64(rec + 16, true),
          gen: view.getBigUint64(rec + 24, true),
          ts: u64(view, rec + 32),
          pos: u64(view, rec + 40),
          len: captured,
          size: view.getUint32(rec + 52, true),
          payload: batch.subarray(rec + LAYOUT.dataHeader, rec + LAYOUT.dataHeader + captured),
        });
        break;
      }
      case EV_OPEN: {
        if (len < LAYOUT.openSize) return batch.byteLength - at;
        const family = view.getUint16(rec + 4, true);
        visit({
          type: EV_OPEN,
          family,
          role: view.getUint8(rec + 6),
          tgid: view.getUint32(rec + 8, true),
          tid: view.getUint32(rec + 12, true),
          fd: Number(view.getBigUint64(rec + 16, true)),
          gen: view.getBigUint64(rec + 24, true),
          ts: Number(view.getBigUint64(rec + 32, true)),
          cgroup: view.getBigUint64(rec + 40, true),
          lport: view.getUint16(rec + 48, true),
          rport: view.getUint16(rec + 50, true),
          laddr: formatAddr(family, batch.subarray(rec + 56, rec + 72)),
          raddr: formatAddr(family, batch.subarray(rec + 72, rec + 88)),
          comm: cstr(batch.subarray(rec + 88, rec + 104)),
        });
        break;
      }
      case EV_CLOSE: {
        if (len < LAYOUT.closeSize) return batch.byteLength - at;
        visit({
          type: EV_CLOSE,
          tgid: view.getUint32(rec + 8, true),
          fd: Number(view.getBigUint64(rec + 16, true)),
          gen: view.getBigUint64(rec + 24, true),
          ts: Number(view.getBigUint64(rec + 32, true)),
          bytesIn: Number(view.getBigUint64(rec + 40, true)),
          bytesOut: Number(view.getBigUint64(rec + 48, true)),
        });
        break;
      }
      case EV_TLS_BIND: {
        if (len < LAYOUT.tlsBindSize) return batch.byteLength - at;
        visit({
          type: EV_TLS_BIND,
          tgid: view.getUint32(rec + 8, true),
          ssl: view.getBigUint64(rec + 16, true),
          sslGen: view.getBigUint64(rec + 24, true),
          fd: Number(view.getBigUint64(rec + 32, true)),
          gen: view.getBigUint64(rec + 40, true),
          ts: Number(view.getBigUint64(rec + 48, true)),
        });
        break;
      }
      case EV_PROC: {
        if (len < LAYOUT.procSize) return batch.byteLength - at;
        visit({
          type: EV_PROC,
          ppid: view.getUint32(rec + 4, true),
          tgid: view.getUint32(rec + 8, true),
          exec: view.getUint32(rec + 12, true) === 1,
          ts: Number(view.getBigUint64(rec + 16, true)),
          comm: cstr(batch.subarray(rec + 24, rec + 40)),
          held: view.getUint32(rec + 40, true) === 1,
          exeDev: view.getBigUint64(rec + 48, true),
          exeIno: view.getBigUint64(rec + 56, true),
        });
        break;
      }
      case EV_LOOP: {
        if (len < LAYOUT.loopSize) return batch.byteLength - at;
        visit({
          type: EV_LOOP,
          kind: view.getUint32(rec + 4, true),
          tgid: view.getUint32(rec + 8, true),
          tid: view.getUint32(rec + 12, true),
          req: view.getBigUint64(rec + 16, true),
          ts: Number(view.getBigUint64(rec + 24, true)),
        });
        break;
      }
      default:
        return batch.byteLength - at;
    }
    at = rec + ((len + 7) & ~7);
  }
  return 0;
}
