/**
 * The struct offsets the Go TLS probes read, and where they come from: the binary's DWARF when it
 * has some, else the table generated per Go release (capture/go/layouts.ts).
 */
import type { NativeGoLayout } from '../../native/retap_native.js';
import type { StructOffsets } from './dwarf.js';
import { GO_LAYOUTS } from './layouts.js';

export type GoLayout = NativeGoLayout;

/** DWARF structs and members the layout is made of. */
export const LAYOUT_STRUCTS: Record<string, readonly string[]> = {
  'crypto/tls.Conn': ['conn'],
  'net.TCPConn': ['conn'],
  'net.conn': ['fd'],
  'net.netFD': ['pfd', 'family', 'sotype'],
  'internal/poll.FD': ['Sysfd'],
  'runtime.g': ['stack'],
  'runtime.stack': ['lo', 'hi'],
};

/** The layout from DWARF offsets, or the names of what is missing. */
export function layoutFromDwarf(s: StructOffsets): GoLayout | { missing: string[] } {
  const missing: string[] = [];
  const get = (struct: string, member: string): number => {
    const v = s.get(struct)?.get(member);
    if (v === undefined) missing.push(`${struct}.${member}`);
    return v ?? 0;
  };
  const layout: GoLayout = {
    tlsConn: get('crypto/tls.Conn', 'conn'),
    tcpConnFd: get('net.TCPConn', 'conn') + get('net.conn', 'fd'),
    netFdSysfd: get('net.netFD', 'pfd') + get('internal/poll.FD', 'Sysfd'),
    netFdFamily: get('net.netFD', 'family'),
    netFdSotype: get('net.netFD', 'sotype'),
    gStackLo: get('runtime.g', 'stack') + get('runtime.stack', 'lo'),
    gStackHi: get('runtime.g', 'stack') + get('runtime.stack', 'hi'),
  };
  return missing.length ? { missing } : layout;
}

/** The oldest and newest Go release (major.minor) the table covers. */
export function tableRange(): { oldest: string; newest: string } {
  const keys = Object.keys(GO_LAYOUTS).sort(
    (a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]) || a.localeCompare(b),
  );
  return { oldest: keys[0] ?? '?', newest: keys.at(-1) ?? '?' };
}

/** The table's layout for a Go release ([1, 22, 12] → the `1.22` row), if it has one. */
export function layoutFromTable(release: readonly [number, number, number]): GoLayout | undefined {
  return GO_LAYOUTS[`${release[0]}.${release[1]}`];
}
